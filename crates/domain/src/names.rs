//! Name keys: the form under which tag and group names are compared for uniqueness, so that
//! "ＶＩＰ  客户", " vip 客户" and "VIP 客户" are recognised as the same name.

use unicode_normalization::UnicodeNormalization;

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
    fn display_names_keep_their_case() {
        assert_eq!(display_name("  VIP   客户 "), "VIP 客户");
    }
}
