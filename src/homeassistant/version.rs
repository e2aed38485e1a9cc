//! Home Assistant's version, as `auth_ok` reports it.

/// `2025.10.1` → (2025, 10); `2025.11.0.dev20251001` → (2025, 11); `2024.3.0b2` → (2024, 3).
pub(crate) fn parse_year_month(version: &str) -> Option<(u32, u32)> {
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
}
