//! Which metadata shape a Home Assistant version expects for `recorder/import_statistics`.

/// HA 2025.10 added `mean_type` and `unit_class` to the command and deprecated `has_mean`;
/// older versions reject those keys as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataStyle {
    /// `mean_type` and `unit_class` (HA ≥ 2025.10).
    MeanType,
    /// `has_mean` (HA < 2025.10).
    HasMean,
}

const MEAN_TYPE_SINCE: (u32, u32) = (2025, 10);

impl MetadataStyle {
    /// A version that cannot be read is taken as current: HA has always reported
    /// `YYYY.M.patch` (with a `b1` or `.devYYYYMMDD` suffix on test builds), and a future
    /// scheme is likelier than a pre-2025.10 one.
    pub fn for_version(ha_version: Option<&str>) -> MetadataStyle {
        match ha_version.and_then(parse_year_month) {
            Some(version) if version < MEAN_TYPE_SINCE => MetadataStyle::HasMean,
            _ => MetadataStyle::MeanType,
        }
    }
}

/// `2025.10.1` → (2025, 10); `2025.11.0.dev20251001` → (2025, 11); `2024.3.0b2` → (2024, 3).
pub fn parse_year_month(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    let year = parts.next()?.parse().ok()?;
    let month_part = parts.next()?;
    let digits = month_part.len() - month_part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let month = month_part[..digits].parse().ok()?;
    Some((year, month))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_beta_and_dev_versions() {
        assert_eq!(parse_year_month("2025.10.1"), Some((2025, 10)));
        assert_eq!(parse_year_month("2024.3.0"), Some((2024, 3)));
        assert_eq!(parse_year_month("2025.11.0.dev20251001"), Some((2025, 11)));
        assert_eq!(parse_year_month("2025.10.0b3"), Some((2025, 10)));
        assert_eq!(parse_year_month("2025.9"), Some((2025, 9)));
        assert_eq!(parse_year_month("unknown"), None);
        assert_eq!(parse_year_month("2025"), None);
        assert_eq!(parse_year_month("2025.x"), None);
    }

    #[test]
    fn picks_the_metadata_style() {
        assert_eq!(MetadataStyle::for_version(Some("2025.10.0")), MetadataStyle::MeanType);
        assert_eq!(
            MetadataStyle::for_version(Some("2025.11.0.dev20251001")),
            MetadataStyle::MeanType
        );
        assert_eq!(MetadataStyle::for_version(Some("2026.1.2")), MetadataStyle::MeanType);
        assert_eq!(MetadataStyle::for_version(Some("2025.9.4")), MetadataStyle::HasMean);
        assert_eq!(MetadataStyle::for_version(Some("2024.3.0")), MetadataStyle::HasMean);
        assert_eq!(MetadataStyle::for_version(Some("2023.12.4")), MetadataStyle::HasMean);
        assert_eq!(MetadataStyle::for_version(None), MetadataStyle::MeanType);
    }
}
