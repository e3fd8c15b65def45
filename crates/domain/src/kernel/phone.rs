//! Phone numbers: mainland China mobiles, parsed from what people type.

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use crate::kernel::error::FieldIssue;

/// A mainland China mobile number, valid by construction: eleven digits starting 13–19.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `13800138000`, `+86 138-0013-8000`, `0086 13800138000` and the like.
    /// Full-width digits and signs (`１３８…`, `＋８６`) are read as their ASCII forms.
    pub fn parse(raw: &str) -> Result<PhoneNumber, FieldIssue> {
        let digits: String = raw
            .nfkc()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = digits.strip_prefix('+').unwrap_or(&digits);
        let digits = if digits.len() == 15 && digits.starts_with("0086") {
            &digits[4..]
        } else if digits.len() == 13 && digits.starts_with("86") {
            &digits[2..]
        } else {
            digits
        };
        let bytes = digits.as_bytes();
        let valid = bytes.len() == 11
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1])
            && bytes.iter().all(u8::is_ascii_digit);
        if valid {
            Ok(PhoneNumber(digits.to_owned()))
        } else {
            Err(FieldIssue::new(
                "phone",
                "phone",
                "must be a mainland China mobile number such as 13800138000",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `LIKE` pattern a search keyword matches phone numbers with: a keyword of digits
    /// matches the end of the number ("the last four digits"), anything else no number.
    pub fn suffix_pattern(keyword: &str) -> Option<String> {
        (!keyword.is_empty() && keyword.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("%{keyword}"))
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn mainland_mobiles_are_accepted_in_common_spellings() {
        for raw in [
            "13800138000",
            "+86 138-0013-8000",
            "0086 13800138000",
            "86 13800138000",
            "(138) 0013 8000",
        ] {
            assert_eq!(
                PhoneNumber::parse(raw).unwrap().as_str(),
                "13800138000",
                "{raw}"
            );
        }
    }

    #[test]
    fn other_numbers_are_refused() {
        for raw in [
            "12800138000",
            "1380013800",
            "138001380001",
            "010-12345678",
            "1380013800a",
            "",
        ] {
            assert!(PhoneNumber::parse(raw).is_err(), "{raw}");
        }
    }
}
