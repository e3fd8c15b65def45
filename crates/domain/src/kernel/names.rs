//! Names people type: what makes one acceptable (visible, no control characters, within its
//! length), and name keys, the form under which tag and group names are compared for
//! uniqueness, so that "ＶＩＰ  客户", " vip 客户" and "VIP 客户" are recognised as the same name.

use unicode_normalization::UnicodeNormalization;

use crate::kernel::error::FieldIssue;

/// Longest name key, in characters: the width of the `name_key` columns. NFKC can make a key
/// much longer than its name (one "ﷺ" becomes 18 characters), so the key is checked too.
pub const NAME_KEY_MAX: usize = 64;

/// The display form of a name, or why it is refused: 1 to `max` characters once trimmed, at
/// least one of them visible, none of them a control character.
pub fn checked_name(field: &str, name: &str, max: usize) -> Result<String, FieldIssue> {
    if name.chars().any(char::is_control) {
        return Err(FieldIssue::new(
            field,
            "control_character",
            "must not contain control characters (NUL, tab, line breaks, …)",
        ));
    }
    let shown = display_name(name);
    let count = shown.chars().count();
    if count == 0 || count > max {
        return Err(FieldIssue::new(
            field,
            "length",
            format!("must be 1 to {max} characters long"),
        ));
    }
    if shown.chars().all(invisible) {
        return Err(FieldIssue::new(
            field,
            "invisible",
            "must contain at least one visible character",
        ));
    }
    Ok(shown)
}

/// [`checked_name`] for names that must be unique under their key: also the key, which must
/// fit in [`NAME_KEY_MAX`] characters.
pub fn checked_unique_name(
    field: &str,
    name: &str,
    max: usize,
) -> Result<(String, String), FieldIssue> {
    let shown = checked_name(field, name, max)?;
    let key = name_key(&shown);
    if key.chars().count() > NAME_KEY_MAX {
        return Err(FieldIssue::new(
            field,
            "length",
            format!(
                "must be at most {NAME_KEY_MAX} characters long once normalised (NFKC); \
                 some characters expand to many"
            ),
        ));
    }
    Ok((shown, key))
}

/// Characters that show nothing: whitespace, Unicode's default-ignorable code points
/// (zero-width spaces and joiners, bidirectional marks, variation selectors, tags) and the
/// Hangul fillers.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFF8}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// NFKC (full-width letters, digits and spaces become their ASCII forms), lower case, trimmed,
/// inner whitespace collapsed to one space.
pub fn name_key(name: &str) -> String {
    let folded: String = name.nfkc().collect::<String>().to_lowercase();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A display name: trimmed, inner whitespace collapsed, otherwise as the user typed it.
pub fn display_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_duplicates_share_a_key() {
        assert_eq!(name_key("ＶＩＰ　 客户"), "vip 客户");
        assert_eq!(name_key("  vip   客户 "), "vip 客户");
        assert_eq!(name_key("VIP 客户"), "vip 客户");
        assert_ne!(name_key("VIP客户"), name_key("VIP 客户"));
        assert_eq!(name_key("Ａ级"), "a级");
    }

    #[test]
    fn invisible_and_control_names_are_refused() {
        assert_eq!(
            checked_name("name", "\u{200B}\u{200D} \u{FEFF}", 32)
                .unwrap_err()
                .code,
            "invisible"
        );
        assert_eq!(
            checked_name("name", "a\u{0}b", 32).unwrap_err().code,
            "control_character"
        );
        assert_eq!(checked_name("name", "  ", 32).unwrap_err().code, "length");
        assert_eq!(checked_name("name", " 高 价值 ", 32).unwrap(), "高 价值");
    }

    #[test]
    fn a_key_that_outgrows_its_column_is_refused() {
        assert_eq!(name_key("ﷺ").chars().count(), 18);
        assert_eq!(
            checked_unique_name("name", "ﷺﷺﷺﷺ", 32).unwrap_err().code,
            "length"
        );
        assert!(checked_unique_name("name", "ﷺﷺﷺ", 32).is_ok());
    }

    #[test]
    fn display_names_keep_their_case() {
        assert_eq!(display_name("  VIP   客户 "), "VIP 客户");
    }
}
