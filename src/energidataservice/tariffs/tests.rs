//! Tariff histories read from the `DatahubPricelist` fixture.

use super::super::dto::{tariff_rows, Envelope};
use super::*;

const N1: &str = "5790001089030";
const ENERGINET: &str = "5790000432752";

fn fixture_rows() -> Vec<TariffRow> {
    let e: Envelope = serde_json::from_str(include_str!(
        "../../../tests/fixtures/energidataservice/datahubpricelist.json"
    ))
    .unwrap();
    tariff_rows(e.records)
}

/// DKK per kWh excluding VAT at `instant`, or `None` when no row covers it.
fn price_at(history: &TariffHistory, instant: DateTime<Utc>) -> Option<f64> {
    let hour = instant.with_timezone(&TZ).hour();
    history.row_at(instant)?.price_for_hour(hour)
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn b2d() -> TariffHistory {
    let key = ChargeKey::new(N1, "B2D");
    TariffHistory::new(
        key.clone(),
        fixture_rows().into_iter().filter(|r| r.charge == key).collect(),
    )
}

#[test]
fn history_rows_change_at_danish_midnight() {
    let h = b2d();
    assert_eq!(h.rows().len(), 3);
    // 21:00 UTC on 31 March is 23:00 CEST: the winter list's Price24.
    assert_eq!(price_at(&h, utc("2025-03-31T21:00:00Z")), Some(0.1494));
    // 22:00 UTC is midnight of 1 April: the summer list's Price1.
    assert_eq!(price_at(&h, utc("2025-03-31T22:00:00Z")), Some(0.0512));
    // 17:00 local on 30 September: summer peak (Price18); the same hour on 1 October: winter peak.
    assert_eq!(price_at(&h, utc("2025-09-30T15:00:00Z")), Some(0.1996));
    assert_eq!(price_at(&h, utc("2025-10-01T15:00:00Z")), Some(0.3993));
    // Before the first row and after the last one nothing is known.
    assert_eq!(price_at(&h, utc("2024-12-31T22:59:59Z")), None);
    assert_eq!(price_at(&h, utc("2026-03-31T22:00:00Z")), None);
    assert_eq!(price_at(&h, utc("2026-03-31T21:59:59Z")), Some(0.1536));
}

#[test]
fn daylight_saving_days_use_the_wall_clock_hour() {
    let h = b2d();
    // 26 October 2025: 00:00 and 01:00 UTC are both 02:xx local (CEST, then CET): Price3.
    let first = h.row_at(utc("2025-10-26T00:30:00Z")).unwrap();
    assert_eq!(first.valid_from.to_string(), "2025-10-01 00:00:00");
    assert_eq!(price_at(&h, utc("2025-10-26T00:30:00Z")), Some(0.0512));
    assert_eq!(price_at(&h, utc("2025-10-26T01:30:00Z")), Some(0.0512));
    // Price7 starts at 06:00 local = 05:00 UTC after the change back.
    assert_eq!(price_at(&h, utc("2025-10-26T04:59:00Z")), Some(0.0512));
    assert_eq!(price_at(&h, utc("2025-10-26T05:00:00Z")), Some(0.1536));
    // 30 March 2025: 01:00 UTC is 03:00 CEST, straight from hour 1 to hour 3.
    assert_eq!(utc("2025-03-30T01:00:00Z").with_timezone(&TZ).hour(), 3);
    // Price7 (0.1494 in the winter list) starts at 06:00 CEST = 04:00 UTC, an hour earlier in
    // UTC than the day before.
    assert_eq!(price_at(&h, utc("2025-03-30T03:59:00Z")), Some(0.0498));
    assert_eq!(price_at(&h, utc("2025-03-30T04:00:00Z")), Some(0.1494));
    assert_eq!(price_at(&h, utc("2025-03-29T04:00:00Z")), Some(0.0498));
}

fn row(code: &str, from: &str, to: Option<&str>, resolution: Resolution, prices: Vec<Option<f64>>) -> TariffRow {
    let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
    TariffRow {
        charge: ChargeKey::new(ENERGINET, code),
        name: None,
        owner_name: None,
        description: None,
        vat_class: None,
        valid_from: t(from),
        valid_to: to.map(t),
        resolution,
        prices,
        tax: false,
    }
}

#[test]
fn empty_hours_fall_back_to_price1_and_daily_lists_ignore_the_hour() {
    let mut prices = vec![None; 24];
    prices[0] = Some(0.2);
    prices[5] = Some(0.9);
    let hourly = row("X", "2025-01-01T00:00", None, Resolution::Hourly, prices);
    assert_eq!(hourly.price_for_hour(0), Some(0.2));
    assert_eq!(hourly.price_for_hour(5), Some(0.9));
    assert_eq!(hourly.price_for_hour(13), Some(0.2));
    let daily = row("Y", "2025-01-01T00:00", None, Resolution::Daily, vec![Some(0.72)]);
    assert_eq!(daily.price_for_hour(17), Some(0.72));
}

#[test]
fn the_newest_overlapping_list_wins() {
    let old = row("X", "2025-01-01T00:00", None, Resolution::Daily, vec![Some(0.1)]);
    let new = row("X", "2025-06-01T00:00", None, Resolution::Daily, vec![Some(0.2)]);
    let h = TariffHistory::new(ChargeKey::new(ENERGINET, "X"), vec![new, old]);
    assert_eq!(price_at(&h, utc("2025-05-31T21:59:00Z")), Some(0.1));
    assert_eq!(price_at(&h, utc("2025-05-31T22:00:00Z")), Some(0.2));
}

#[test]
fn a_set_sums_its_charges_and_reports_the_missing_ones() {
    let wanted = vec![
        ChargeKey::new(N1, "B2D"),
        ChargeKey::new(ENERGINET, "41000"),
        ChargeKey::new(ENERGINET, "40000"),
        ChargeKey::new(ENERGINET, "EA-001"),
        ChargeKey::new(ENERGINET, "40000"),
    ];
    let set = TariffSet::new(&wanted, fixture_rows());
    assert!(set.missing().is_empty());
    assert_eq!(set.histories().len(), 4);
    // 18:00 local on 26 October 2025 (17:00 UTC, CET): winter peak 0.3993 + 0.072 + 0.049 + 0.72.
    let sum = set.at(utc("2025-10-26T17:00:00Z")).unwrap();
    assert!((sum.total - (0.3993 + 0.072 + 0.049 + 0.72)).abs() < 1e-9);
    assert!((sum.tax - 0.72).abs() < 1e-9);
    // From 1 January 2026 only B2D has a list in the fixture: the hour is not priced.
    assert_eq!(set.at(utc("2026-01-01T12:00:00Z")), None);

    let unknown = ChargeKey::new(N1, "NOPE");
    let with_unknown = TariffSet::new(&[wanted[0].clone(), unknown.clone()], fixture_rows());
    assert_eq!(with_unknown.missing(), [unknown]);
    assert_eq!(with_unknown.at(utc("2025-10-26T17:00:00Z")), None);

    // A pair that a two-column filter also matches is not mistaken for a wanted charge.
    let cross = ChargeKey::new(N1, "41000");
    assert_eq!(
        TariffSet::new(std::slice::from_ref(&cross), fixture_rows()).missing(),
        [cross]
    );
    assert_eq!(
        TariffSet::none().at(utc("2025-10-26T17:00:00Z")),
        Some(TariffSum { total: 0.0, tax: 0.0 })
    );
}
