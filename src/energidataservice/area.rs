//! The two Danish bidding zones. Spot prices differ between them; tariffs do not depend on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum PriceArea {
    /// West of the Great Belt: Jutland and Funen.
    DK1,
    /// East of the Great Belt: Zealand, Lolland-Falster, Bornholm.
    DK2,
}

impl PriceArea {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            PriceArea::DK1 => "DK1",
            PriceArea::DK2 => "DK2",
        }
    }

    /// The zone of a Danish postcode. Postcodes follow geography: everything below 5000 lies east
    /// of the Great Belt (Bornholm's 37xx included), 5000 and up is Funen and Jutland. Anything
    /// that is not four digits is no Danish postcode, and guessing a zone for it would price a
    /// whole meter wrongly, so it gives `None`.
    pub(crate) fn from_postcode(postcode: &str) -> Option<PriceArea> {
        let code = postcode.trim();
        if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number: u16 = code.parse().ok()?;
        Some(if number < 5000 { PriceArea::DK2 } else { PriceArea::DK1 })
    }
}

impl fmt::Display for PriceArea {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown price area {0:?}: use DK1 (west of the Great Belt) or DK2 (east)")]
pub struct UnknownArea(pub(crate) String);

impl FromStr for PriceArea {
    type Err = UnknownArea;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "DK1" => Ok(PriceArea::DK1),
            "DK2" => Ok(PriceArea::DK2),
            _ => Err(UnknownArea(s.to_owned())),
        }
    }
}

impl TryFrom<String> for PriceArea {
    type Error = UnknownArea;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcodes_east_and_west_of_the_great_belt() {
        assert_eq!(PriceArea::from_postcode("8000"), Some(PriceArea::DK1));
        assert_eq!(PriceArea::from_postcode("5000"), Some(PriceArea::DK1));
        assert_eq!(PriceArea::from_postcode("9990"), Some(PriceArea::DK1));
        assert_eq!(PriceArea::from_postcode("4999"), Some(PriceArea::DK2));
        assert_eq!(PriceArea::from_postcode("2100"), Some(PriceArea::DK2));
        assert_eq!(PriceArea::from_postcode("3700"), Some(PriceArea::DK2));
        assert_eq!(PriceArea::from_postcode("0800"), Some(PriceArea::DK2));
        assert_eq!(PriceArea::from_postcode(" 8000 "), Some(PriceArea::DK1));
        for bad in ["", "800", "80000", "8OOO", "-800", "+800", "DK-8000"] {
            assert_eq!(PriceArea::from_postcode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parsing_and_serde_accept_either_case_and_write_upper() {
        assert_eq!("dk1".parse::<PriceArea>(), Ok(PriceArea::DK1));
        assert_eq!(" DK2".parse::<PriceArea>(), Ok(PriceArea::DK2));
        let err = "SE3".parse::<PriceArea>().unwrap_err();
        assert!(err.to_string().contains("SE3"), "{err}");
        assert_eq!(serde_json::to_string(&PriceArea::DK2).unwrap(), "\"DK2\"");
        assert_eq!(serde_json::from_str::<PriceArea>("\"dk1\"").unwrap(), PriceArea::DK1);
        assert!(serde_json::from_str::<PriceArea>("\"DK3\"").is_err());
        assert_eq!(PriceArea::DK1.to_string(), "DK1");
    }
}
