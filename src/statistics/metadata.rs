//! Which metadata shape a Home Assistant version expects for `recorder/import_statistics`.

/// HA 2025.10 added `mean_type` and `unit_class` to the command and deprecated `has_mean`;
/// older versions reject those keys as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataStyle {
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
    pub(crate) fn for_version(ha_version: Option<&str>) -> MetadataStyle {
        match ha_version.and_then(crate::homeassistant::parse_year_month) {
            Some(version) if version < MEAN_TYPE_SINCE => MetadataStyle::HasMean,
            _ => MetadataStyle::MeanType,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
