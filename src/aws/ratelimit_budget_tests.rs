//! The adaptive budget's behaviour against the simulated API Gateway of [`super::sim`]: alone, shared
//! with operators like it, beside a burst from another tool and beside a controller that does not slow
//! down when throttled.

use super::sim::*;
use super::*;

#[test]
fn never_throttled_it_keeps_the_ceiling_and_a_throttle_cuts_it_once_per_round() {
    let t0 = Instant::now();
    let s = |x: f64| t0 + Duration::from_secs_f64(x);
    let mut b = Budget::new(10.0);
    assert_eq!(b.rate(s(100.0)), 10.0);
    assert!(b.throttled(s(0.9), s(1.0)));
    assert!((b.rate(s(1.0)) - 7.0).abs() < 1e-9, "{}", b.rate(s(1.0)));
    // Answers to calls sent before the cut change nothing.
    let before = b.clone();
    assert!(!b.throttled(s(0.95), s(1.05)));
    assert_eq!(b.rate(s(1.05)), before.rate(s(1.05)));
    assert!(b.rate(s(1.05)) < 7.5, "{}", b.rate(s(1.05)));
    // Back at the old rate after K = cbrt(10 × (1 − BETA) / SCALE) s, and never above the ceiling.
    let k = (10.0 * (1.0 - BETA) / SCALE).cbrt();
    assert!((b.rate(s(1.0 + k)) - 10.0).abs() < 1e-9);
    assert_eq!(b.rate(s(1000.0)), 10.0);
    // Throttled again and again, it never goes below the floor.
    for i in 0..100 {
        b.throttled(s(2.0 + f64::from(i) * 0.1), s(2.01 + f64::from(i) * 0.1));
    }
    assert_eq!(b.rate(s(12.02)), DEFAULT_FLOOR);
}

#[test]
fn alone_under_the_quota_it_is_never_throttled_and_uses_it_all() {
    let mut c = [Client::new(QUOTA, Instant::now(), 0..60_000)];
    simulate(&mut c, 61_000, None);
    assert_eq!(c[0].refused(0, 60_000), 0);
    let rate = c[0].accepted(10_000, 60_000) as f64 / 50.0;
    assert!(rate > 0.97 * QUOTA, "{rate:.2}/s");
}

#[test]
fn alone_with_a_ceiling_above_the_quota_it_settles_just_under_it() {
    // A ceiling set too high (or a quota lowered by AWS): it finds the quota and stays near it.
    let mut c = [Client::new(2.0 * QUOTA, Instant::now(), 0..120_000)];
    simulate(&mut c, 121_000, None);
    let (ok, refused) = (
        c[0].accepted(30_000, 120_000),
        c[0].refused(30_000, 120_000),
    );
    let rate = ok as f64 / 90.0;
    let share = refused as f64 / (ok + refused) as f64;
    assert!(rate > 0.85 * QUOTA && rate <= QUOTA * 1.01, "{rate:.2}/s");
    // The probing above the quota costs a call every few seconds.
    assert!(share < 0.03, "{:.1} % throttled", 100.0 * share);
}

#[test]
fn two_sharing_an_account_settle_near_half_each() {
    let t0 = Instant::now();
    let mut c = [
        Client::new(QUOTA, t0, 0..180_000),
        Client::new(QUOTA, t0, 0..180_000),
    ];
    simulate(&mut c, 181_000, None);
    let (from, to) = (60_000, 180_000);
    let ok: Vec<usize> = c.iter().map(|c| c.accepted(from, to)).collect();
    let refused: usize = c.iter().map(|c| c.refused(from, to)).sum();
    let total: usize = ok.iter().sum();
    let together = total as f64 / 120.0;
    let share = ok[0] as f64 / total as f64;
    let throttled = refused as f64 / (total + refused) as f64;
    assert!(together > 0.85 * QUOTA, "together {together:.2}/s");
    assert!((0.4..=0.6).contains(&share), "first's share {share:.2}");
    assert!(throttled < 0.05, "{:.1} % throttled", 100.0 * throttled);
    assert!(together <= QUOTA * 1.01, "together {together:.2}/s");
}

#[test]
fn when_the_other_leaves_it_takes_the_whole_quota_again() {
    let t0 = Instant::now();
    let mut c = [
        Client::new(QUOTA, t0, 0..120_000),
        Client::new(QUOTA, t0, 0..60_000),
    ];
    simulate(&mut c, 121_000, None);
    let rate = c[0].accepted(75_000, 120_000) as f64 / 45.0;
    assert!(rate > 0.95 * QUOTA, "{rate:.2}/s after the other left");
}

#[test]
fn a_burst_from_another_tool_makes_it_yield_and_come_back() {
    // Terraform takes 8 of the 10 calls/s for 20 s.
    let mut c = [Client::new(QUOTA, Instant::now(), 0..90_000)];
    simulate(&mut c, 91_000, Some((8.0, 20_000, 40_000)));
    let during = c[0].accepted(25_000, 40_000) as f64 / 15.0;
    let refused = c[0].refused(25_000, 40_000) as f64 / 15.0;
    eprintln!("DBG terraform during {during:.2} refused {refused:.2}");
    let after = c[0].accepted(55_000, 90_000) as f64 / 35.0;
    // Ours leaves the other tool (which never slows down) more than half of the quota, and fewer
    // than one in five of its own calls is refused meanwhile.
    assert!(
        during < 5.0,
        "ours took {during:.2}/s while the other wanted 8/s"
    );
    assert!(
        refused < 0.2 * during,
        "{refused:.2}/s throttled while yielding"
    );
    assert!(after > 0.95 * QUOTA, "{after:.2}/s after the burst");
}

#[test]
fn a_newcomer_gets_its_half_within_a_minute() {
    // One operator has had the quota to itself for 30 s when a second one (another cluster) starts.
    let t0 = Instant::now();
    let mut c = [
        Client::new(QUOTA, t0, 0..150_000),
        Client::new(QUOTA, t0, 30_000..150_000),
    ];
    simulate(&mut c, 151_000, None);
    let (from, to) = (90_000, 150_000);
    let ok: Vec<usize> = c.iter().map(|c| c.accepted(from, to)).collect();
    let share = ok[1] as f64 / (ok[0] + ok[1]) as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "the newcomer's share {share:.2}"
    );
}

/// What one phase of the bench under the quota measures: time until every client's calls are done, over
/// the quota's bound (admitted calls − the quota's burst) / rate, and the share of calls refused.
fn phase(work: &[usize]) -> (f64, f64) {
    let t0 = Instant::now();
    let mut c: Vec<Client> = work.iter().map(|w| Client::with_work(*w, t0)).collect();
    simulate(&mut c, 600_000, None);
    let done = c
        .iter()
        .map(|c| c.done_at.expect("every client finishes"))
        .max()
        .unwrap();
    let admitted: usize = c.iter().map(|c| c.ok.len()).sum();
    let refused: usize = c.iter().map(|c| c.throttled.len()).sum();
    let bound = (admitted as f64 - f64::from(QUOTA_BURST)) / QUOTA;
    (
        done as f64 / 1000.0 / bound,
        refused as f64 / (admitted + refused) as f64,
    )
}

#[test]
fn alone_a_thousand_calls_take_at_most_five_percent_more_than_the_quota_allows() {
    let (over, refused) = phase(&[1000]);
    assert!(over <= 1.05, "{over:.3}× the bound");
    assert!(refused <= 0.02, "{:.1} % refused", 100.0 * refused);
}

#[test]
fn two_sharing_a_thousand_calls_take_at_most_ten_percent_more_than_the_quota_allows() {
    let (over, refused) = phase(&[500, 500]);
    assert!(over <= 1.10, "{over:.3}× the bound");
    assert!(refused <= 0.05, "{:.1} % refused", 100.0 * refused);
}

/// Two operators started `late` ms apart on a steady local network, their buckets empty at the start
/// (new processes), each with 500 calls to make.
struct LocalPair {
    /// The smaller of the two shares of the calls admitted until the first of them was done.
    smaller_share: f64,
    /// When the last was done, s.
    last_done: f64,
    admitted: usize,
    refused: usize,
}

fn two_on_a_local_network(late: u64, evenly_spaced: bool) -> LocalPair {
    let t0 = Instant::now();
    let mut c: Vec<Client> = [0, late]
        .into_iter()
        .map(|late| {
            let bucket = operator_bucket(QUOTA, t0 + Duration::from_millis(late)).emptied();
            let bucket = if evenly_spaced {
                bucket.evenly_spaced()
            } else {
                bucket
            };
            Client {
                work: Some(500),
                bucket,
                ..Client::new(QUOTA, t0, late..u64::MAX).on_a_local_network()
            }
        })
        .collect();
    simulate(&mut c, 600_000, None);
    let done: Vec<u64> = c
        .iter()
        .map(|c| c.done_at.expect("every client finishes"))
        .collect();
    let first = done[0].min(done[1]) + 1;
    let [a, b] = [c[0].accepted(0, first), c[1].accepted(0, first)].map(|n| n as f64);
    LocalPair {
        smaller_share: a.min(b) / (a + b),
        last_done: done[0].max(done[1]) as f64 / 1000.0,
        admitted: c.iter().map(|c| c.ok.len()).sum(),
        refused: c.iter().map(|c| c.throttled.len()).sum(),
    }
}

/// The second process's start, ms after the first's: where it falls in the 100 ms between two tokens.
const OFFSETS: [u64; 25] = [
    1, 5, 9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 49, 53, 57, 61, 65, 69, 73, 77, 81, 85, 89, 93, 97,
];

#[test]
fn evenly_spaced_calls_at_the_quota_lock_the_other_operator_out() {
    // The failure the uneven spacing is for, kept so that the model shows it: with every round trip the
    // same, an operator pacing evenly at exactly the quota's rate reaches AWS just after each of its
    // tokens appears there, is never refused, and the other is refused whenever it tries (the bench, row
    // (b) create: one done in 50.3 s, the other in 104.9 s).
    let shares: Vec<f64> = OFFSETS
        .iter()
        .map(|late| two_on_a_local_network(*late, true).smaller_share)
        .collect();
    assert!(
        shares.iter().any(|s| *s < 0.2),
        "no start offset showed the lockout: {shares:.2?}"
    );
}

#[test]
fn two_sharing_a_steady_local_network_each_get_a_fair_share_all_along() {
    for late in OFFSETS {
        let pair = two_on_a_local_network(late, false);
        assert!(
            pair.smaller_share >= 0.35,
            "started {late} ms apart: {:.2} of the calls until the first was done",
            pair.smaller_share
        );
        let bound = (pair.admitted as f64 - f64::from(QUOTA_BURST)) / QUOTA;
        assert!(
            pair.last_done <= 1.10 * bound,
            "started {late} ms apart: {:.1} s against a bound of {bound:.1} s",
            pair.last_done
        );
        let refused = pair.refused as f64 / (pair.admitted + pair.refused) as f64;
        assert!(
            refused <= 0.05,
            "started {late} ms apart: {:.1} % refused",
            100.0 * refused
        );
    }
}

#[test]
fn a_restart_forgets_its_share_for_a_round_or_two_only() {
    // Why the learned rate is not kept across restarts: a process that starts while another takes half
    // the quota starts at the ceiling with an empty bucket, is refused within a round of answers, and
    // is back at its half within seconds, which costs a few refused calls, not a drift period's worth.
    let t0 = Instant::now();
    let mut c = [
        Client::new(QUOTA, t0, 0..150_000),
        Client::new(QUOTA, t0, 0..150_000),
    ];
    c[0].restart_at = Some(60_000);
    simulate(&mut c, 151_000, None);
    let refused_after = c[0].refused(60_000, 70_000);
    let refused_before = c[0].refused(50_000, 60_000);
    assert!(
        refused_after <= refused_before + 5,
        "{refused_after} refused in the 10 s after the restart, {refused_before} in the 10 s before"
    );
    let ok: Vec<usize> = c.iter().map(|c| c.accepted(70_000, 150_000)).collect();
    let share = ok[0] as f64 / (ok[0] + ok[1]) as f64;
    assert!(
        (0.4..=0.6).contains(&share),
        "the restarted one's share {share:.2}"
    );
}

/// One bench phase beside a greedy controller, ours with budget floor `floor`: (our done, its done, our
/// refused share, its refused share), seconds and fractions.
fn phase_beside_greedy(floor: f64, ours: usize, theirs: usize) -> (f64, f64, f64, f64) {
    phase_beside_greedy_on(floor, ours, theirs, |c| c)
}

/// [`phase_beside_greedy`] with ours on the network `network` gives it.
fn phase_beside_greedy_on(
    floor: f64,
    ours: usize,
    theirs: usize,
    network: fn(Client) -> Client,
) -> (f64, f64, f64, f64) {
    let t0 = Instant::now();
    let mut c = [network(Client {
        budget: Budget::with_floor(QUOTA, floor),
        ..Client::with_work(ours, t0)
    })];
    let mut g = [Greedy::with_work(theirs)];
    simulate_beside(&mut c, &mut g, 900_000, None);
    let share = |ok: usize, refused: usize| refused as f64 / (ok + refused) as f64;
    (
        c[0].done_at.expect("ours finishes") as f64 / 1000.0,
        g[0].done_at.expect("the greedy one finishes") as f64 / 1000.0,
        share(c[0].ok.len(), c[0].throttled.len()),
        share(g[0].ok.len(), g[0].throttled.len()),
    )
}

#[test]
fn the_greedy_model_keeps_the_quota_busy_and_is_refused_as_often_as_ack() {
    // The model of a controller that does not slow down, checked against what ACK (4 workers) alone did
    // under the quota in the bench: it finished at the quota's bound with 24 % of its calls refused.
    let mut g = [Greedy::with_work(3000)];
    simulate_beside(&mut [], &mut g, 900_000, None);
    let (ok, refused) = (g[0].ok.len(), g[0].throttled.len());
    let bound = (ok as f64 - f64::from(QUOTA_BURST)) / QUOTA;
    let done = g[0].done_at.expect("it finishes") as f64 / 1000.0;
    assert!(done <= 1.01 * bound, "{done:.1} s, bound {bound:.1} s");
    let share = refused as f64 / (ok + refused) as f64;
    assert!(
        (0.2..0.3).contains(&share),
        "{:.1} % refused",
        100.0 * share
    );
}

#[test]
fn beside_one_that_does_not_back_off_it_yields_by_default() {
    // The bench's row (d) in one phase: ours has 550 calls to make, the greedy controller 1500 (ACK
    // needs about three calls per resource where ours needs one). The default budget treats every
    // refusal as a sign to give way, and the greedy one never gives way, so ours is left a small share
    // and finishes after it, though refused far less often. This is the price of yielding: a caller
    // cannot tell from AWS's answers alone one that does not back off from several that do.
    let (ours, theirs, our_refused, their_refused) = phase_beside_greedy(DEFAULT_FLOOR, 550, 1500);
    assert!(
        ours > theirs,
        "ours done at {ours:.1} s, the greedy one at {theirs:.1} s"
    );
    assert!(
        our_refused < 0.5 * their_refused,
        "ours {:.1} % refused, the greedy one {:.1} %",
        100.0 * our_refused,
        100.0 * their_refused
    );
}

#[test]
fn with_a_minimum_rate_it_keeps_its_share_beside_one_that_does_not_back_off() {
    // The same phase with --aws-min-rate 5 (half the quota): ours keeps its half while the greedy one
    // is there and is done first, still refused less often than the greedy one.
    let (ours, theirs, our_refused, their_refused) = phase_beside_greedy(5.0, 550, 1500);
    assert!(
        ours < 0.8 * theirs,
        "ours done at {ours:.1} s, the greedy one at {theirs:.1} s"
    );
    assert!(
        our_refused < their_refused,
        "ours {:.1} % refused, the greedy one {:.1} %",
        100.0 * our_refused,
        100.0 * their_refused
    );
}

#[test]
fn with_a_minimum_rate_on_a_local_network_its_calls_stay_evenly_spaced_at_the_floor() {
    // Uneven spacing is for the ceiling only: at the floor beside a caller that does not slow down, it
    // had ours refused 93 times against 52 and done at 123.9 s against 112.1 s (the bench's row (e)
    // lost its lead with it).
    let (ours, theirs, our_refused, _) =
        phase_beside_greedy_on(5.0, 550, 1500, Client::on_a_local_network);
    assert!(
        ours < 0.6 * theirs,
        "ours done at {ours:.1} s, the greedy one at {theirs:.1} s"
    );
    assert!(
        our_refused < 0.12,
        "ours {:.1} % refused",
        100.0 * our_refused
    );
}

#[test]
fn a_minimum_rate_at_half_the_quota_still_shares_fairly_with_another_operator() {
    // Two operators with --aws-min-rate 5 on one account: the floors add up to the quota, so they meet
    // at half each as without them, and few calls are refused.
    let t0 = Instant::now();
    let mut c = [
        Client::new(QUOTA, t0, 0..180_000),
        Client::new(QUOTA, t0, 0..180_000),
    ];
    for client in &mut c {
        client.budget = Budget::with_floor(QUOTA, 5.0);
    }
    simulate(&mut c, 181_000, None);
    let (from, to) = (60_000, 180_000);
    let ok: Vec<usize> = c.iter().map(|c| c.accepted(from, to)).collect();
    let refused: usize = c.iter().map(|c| c.refused(from, to)).sum();
    let total: usize = ok.iter().sum();
    let share = ok[0] as f64 / total as f64;
    let throttled = refused as f64 / (total + refused) as f64;
    assert!((0.4..=0.6).contains(&share), "first's share {share:.2}");
    assert!(throttled < 0.05, "{:.1} % throttled", 100.0 * throttled);
}
