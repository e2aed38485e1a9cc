//! Back within minutes after any outage: the real ElOverblik provider and the bridge against a
//! fake DataHub whose outage answers 503 and 429, resets connections and cuts or garbles 200
//! answers, on tokio's paused clock (hours of backoff take no time, and minutes are exact).

use std::sync::Arc;
use std::time::Duration;

use chrono::Days;
use meter2mqtt::bridge::{Bridge, BridgeEvent};
use meter2mqtt::config::BridgeConfig;
use meter2mqtt::http::{TokioPace, TokioSleeper};
use meter2mqtt::model::ApiStatus;
use meter2mqtt::providers::eloverblik::{
    default_energidataservice_url, rate_limiter, EloverblikApi, EloverblikProvider, Options, Settings,
};
use meter2mqtt::secret::Secret;
use meter2mqtt::state::StateStore;
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::flaky_datahub::{Fault, FlakyDatahub};
use crate::support::generated_datahub::danish_today;
use crate::support::logs::Logs;
use crate::support::recording::Recording;

const TEN_MINUTES: Duration = Duration::from_secs(600);

struct Running {
    datahub: FlakyDatahub,
    sink: Recording,
    events: Receiver<BridgeEvent>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _state: tempfile::TempDir,
}

impl Running {
    /// The bridge polling one ElOverblik account hourly, with the provider's own retry policy
    /// and rate limits; `before` sets up the fake before the first call.
    async fn start(before: impl FnOnce(&FlakyDatahub)) -> Running {
        let today = danish_today();
        let datahub = FlakyDatahub::start(today).await;
        before(&datahub);
        let state = tempfile::tempdir().unwrap();
        let settings = Settings {
            name: Some("home".into()),
            refresh_token: Secret::new("refresh"),
            base_url: datahub.uri.clone(),
            api: EloverblikApi::Customer,
            metering_points: Vec::new(),
            charges: false,
            prices: false,
            price_area: None,
            price_resolution: None,
            co2: true,
            vat: 25.0,
            supplier_markup: 0.0,
            supplier_fee: 0.0,
            energidataservice_url: default_energidataservice_url(),
        };
        let options = Options {
            sleeper: Arc::new(TokioSleeper),
            limiter: Arc::new(rate_limiter(Arc::new(TokioPace))),
            ..Options::default()
        };
        let provider = EloverblikProvider::new(
            &settings,
            "home".into(),
            StateStore::open(state.path()).unwrap(),
            options,
        )
        .unwrap();
        let bridge_settings = BridgeConfig {
            poll_interval: Duration::from_secs(3600),
            jitter: Duration::ZERO,
            history_start: Some(today - Days::new(3)),
            ..BridgeConfig::default()
        };
        let sink = Recording::default();
        let bridge = Bridge::new(bridge_settings, vec![Arc::new(provider)]).with_sink(Arc::new(sink.clone()));
        let events = bridge.events();
        let stop = CancellationToken::new();
        let task = tokio::spawn(bridge.run(stop.clone()));
        Running {
            datahub,
            sink,
            events,
            stop,
            task,
            _state: state,
        }
    }

    /// `(intervals delivered, errors)` of the next poll.
    async fn next_poll(&mut self) -> (usize, usize) {
        match self.events.recv().await.unwrap() {
            event @ BridgeEvent::PollFinished { errors, .. } => (event.delivered_to("recording"), errors),
        }
    }

    /// The API status (state and error text) the last poll reported for the point.
    fn last_status(&self) -> (ApiStatus, Option<String>) {
        let outcomes = self.sink.outcomes.lock().unwrap();
        let outcome = outcomes.last().unwrap().get(&FlakyDatahub::point()).cloned().unwrap();
        (outcome.status, outcome.error)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// An outage of `faults` that outlasts two polls' retries; the API recovers as the second
/// failed poll ends. Returns how long the data took from the recovery.
async fn outage_over_two_polls(faults: &[Fault]) -> Duration {
    let mut run = Running::start(|datahub| datahub.outage(faults)).await;
    assert_eq!(run.next_poll().await, (0, 1), "{faults:?}");
    let (status, error) = run.last_status();
    let error = error.unwrap();
    assert!(error.contains("POST /api/meterdata/gettimeseries/"), "{error}");
    assert!(!error.contains("needs your action"), "{error}");
    if faults.contains(&Fault::Status(429)) && faults.len() == 1 {
        assert_eq!(status, ApiStatus::RateLimited);
    } else {
        assert_eq!(status, ApiStatus::Unavailable, "{faults:?}");
    }
    assert_eq!(run.next_poll().await, (0, 1), "{faults:?}");
    run.datahub.recover();
    let recovered = Instant::now();
    let (delivered, errors) = run.next_poll().await;
    let took = recovered.elapsed();
    assert!(
        delivered >= 3 * 92 && errors == 0,
        "{faults:?}: {delivered} delivered, {errors} errors"
    );
    assert_eq!(run.last_status(), (ApiStatus::Ok, None));
    // The next-poll sensor: 5 and 10 minutes after the failed polls, then the regular hour.
    assert_eq!(run.sink.announced_minutes(), [5, 10, 60], "{faults:?}");
    run.stop().await;
    took
}

#[tokio::test(start_paused = true)]
async fn each_fault_alone_data_arrives_within_ten_minutes_of_recovery() {
    let mut worst = Duration::ZERO;
    for fault in Fault::ALL {
        let took = outage_over_two_polls(&[fault]).await;
        assert!(took <= TEN_MINUTES, "{fault:?}: data {took:?} after the recovery");
        worst = worst.max(took);
    }
    println!("worst time from recovery to data: {worst:?}");
}

#[tokio::test(start_paused = true)]
async fn all_faults_in_turn_data_arrives_within_ten_minutes_of_recovery() {
    let took = outage_over_two_polls(&Fault::ALL).await;
    assert!(took <= TEN_MINUTES, "data {took:?} after the recovery");
    println!("time from recovery to data: {took:?}");
}

#[tokio::test(start_paused = true)]
async fn every_fault_in_one_poll_spends_the_budget_and_the_next_try_comes_after_five_minutes() {
    // One of each, five answers: the whole budget of one call (four retries).
    let mut run = Running::start(|datahub| datahub.next_answers(&Fault::ALL)).await;
    let started = Instant::now();
    assert_eq!(run.next_poll().await, (0, 1));
    let (_, error) = run.last_status();
    let error = error.unwrap();
    // The last answer of the budget was the malformed one; the error quotes it.
    assert!(
        error.contains("still failing after 5 attempts") && error.contains("body starts with \"<html>"),
        "{error}"
    );
    let recovered = Instant::now();
    let (delivered, errors) = run.next_poll().await;
    assert!(delivered > 0 && errors == 0);
    assert_eq!(recovered.elapsed(), Duration::from_secs(300));
    assert_eq!(run.datahub.data_calls(), 5 + 1);
    assert!(started.elapsed() < TEN_MINUTES + Duration::from_secs(300));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn garbled_answers_within_the_budget_are_retried_in_the_same_poll() {
    let mut run =
        Running::start(|datahub| datahub.next_answers(&[Fault::Reset, Fault::Truncated, Fault::Malformed])).await;
    let (delivered, errors) = run.next_poll().await;
    assert!(
        delivered >= 3 * 92 && errors == 0,
        "{delivered} delivered, {errors} errors"
    );
    assert_eq!(run.datahub.data_calls(), 4);
    assert_eq!(run.sink.announced_minutes(), [60]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_long_outage_backs_off_5_10_20_minutes_and_data_follows_a_recovery_within_ten() {
    let mut run = Running::start(|datahub| datahub.outage(&Fault::ALL)).await;
    for _ in 0..3 {
        assert_eq!(run.next_poll().await, (0, 1));
    }
    assert_eq!(run.sink.announced_minutes(), [5, 10, 20]);
    // DataHub comes back half-way through the 20 minutes' wait.
    tokio::time::sleep(TEN_MINUTES).await;
    run.datahub.recover();
    let recovered = Instant::now();
    let (delivered, errors) = run.next_poll().await;
    assert!(delivered > 0 && errors == 0);
    assert!(recovered.elapsed() <= TEN_MINUTES, "{:?}", recovered.elapsed());
    assert_eq!(run.sink.announced_minutes(), [5, 10, 20, 60]);
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_keeps_the_regular_interval_and_says_it_needs_the_user() {
    let (logs, _capturing) = Logs::capture();
    let mut run = Running::start(|_| {}).await;
    let (delivered, _) = run.next_poll().await;
    assert!(delivered > 0);
    run.datahub.revoke();
    let before = Instant::now();
    assert_eq!(run.next_poll().await, (0, 1));
    assert_eq!(before.elapsed(), Duration::from_secs(3600));
    let (status, error) = run.last_status();
    assert_eq!(status, ApiStatus::AuthError);
    let error = error.unwrap();
    assert!(
        error.contains("refresh token was refused") && error.contains("needs your action"),
        "{error}"
    );
    assert_eq!(run.next_poll().await, (0, 1));
    assert_eq!(run.sink.announced_minutes(), [60, 60, 60]);
    let text = logs.text();
    assert!(
        text.lines()
            .any(|l| l.contains("ERROR") && l.contains("needs your action")),
        "{text}"
    );
    run.stop().await;
}
