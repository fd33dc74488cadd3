//! The balancer conformance suite: the contract of [`Balancer`], as scenarios any
//! implementation runs against itself (feature `testing`).
//!
//! An implementation plugs in through a [`Harness`]: it makes a fresh, empty balancer for
//! each scenario and lets time pass. lb-memory's harness moves a [`ManualClock`](crate::ManualClock),
//! so its scenarios take no time; lb-redis's sleeps, against a real redis-server.
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one `#[test]` per scenario,
//! named after it, so a failure names the scenario and its assertion says what was
//! expected. [`run_all`] runs them one after the other instead, for a runner of your own.
//!
//! ```ignore
//! use std::sync::Arc;
//! use std::time::Duration;
//! use lb_core::testing::Harness;
//! use lb_core::{Balancer, BalancerConfig, ManualClock, Strategy};
//!
//! #[derive(Default)]
//! struct MyHarness(Arc<ManualClock>);
//!
//! #[async_trait::async_trait]
//! impl Harness for MyHarness {
//!     async fn balancer(&self, config: BalancerConfig, strategy: Box<dyn Strategy>) -> Arc<dyn Balancer> {
//!         Arc::new(MyBalancer::with_clock(config, strategy, self.0.clone()))
//!     }
//!     async fn advance(&self, by: Duration) {
//!         self.0.advance(by);
//!     }
//! }
//!
//! #[cfg(test)]
//! mod conformance {
//!     lb_core::conformance_tests!(super::MyHarness::default());
//! }
//! ```
//!
//! `examples/custom_balancer.rs` in this workspace does exactly that for a balancer that
//! stores no placements and ignores health marks and connection reports, declaring so in
//! [`Harness::capabilities`].
//!
//! # Time
//!
//! Every timed scenario sets the TTL under test to [`Harness::ttl`] (800 ms unless the
//! harness says otherwise) and advances time by fractions and small multiples of it: about
//! 15 TTLs over the whole suite. What must still hold is checked at most 0.6 TTL after it
//! was set or renewed, what must have expired at least 1.1 TTL after, so a harness on real
//! time tolerates stalls of a good fraction of a TTL. Scenarios that test no expiry keep
//! [`BalancerConfig::default`]'s long TTLs.
//!
//! # Capabilities
//!
//! A balancer may leave parts of the contract out by design, as the trait's defaults do
//! (a balancer that computes placements rather than storing them, one that only trusts
//! heartbeats). It declares so in [`Harness::capabilities`]; a scenario that needs what is
//! missing then checks instead that the missing part is harmless (its calls succeed and
//! change nothing that can be seen), and says so on stderr. Parts of a scenario that do not
//! depend on the capability still run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Balancer, BalancerConfig, Error, LiveStream, Origin, OriginId, OriginSource, PickIntent,
    Registration, Strategy, StreamKey,
};

mod health;
mod placement;
mod rendezvous;
mod sessions;
mod tentative;

/// Every scenario of the suite, each an `async fn(&dyn Harness)` that panics with what was
/// expected when the balancer breaks the contract.
pub mod scenarios {
    pub use super::health::*;
    pub use super::placement::*;
    pub use super::rendezvous::{
        independent_balancers_agree_under_rendezvous,
        only_the_streams_of_a_joining_or_leaving_origin_move, rendezvous_follows_weights,
        the_load_bound_sheds_to_the_next_origin_in_hash_order,
    };
    pub use super::sessions::*;
    pub use super::tentative::*;
}

pub use rendezvous::UnderRendezvous;

/// The default [`Harness::ttl`].
pub const DEFAULT_TTL: Duration = Duration::from_millis(800);

/// How the suite makes balancers of one implementation and lets time pass for them.
#[async_trait]
pub trait Harness: Send + Sync {
    /// A new balancer with these timings and this strategy, sharing no state with any
    /// balancer made before (a fresh map, a fresh key prefix, a fresh database...). A
    /// balancer that chooses origins its own way may ignore `strategy`; it then declares no
    /// [`Capabilities::placements`].
    async fn balancer(
        &self,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Arc<dyn Balancer>;

    /// Lets `by` pass for every balancer this harness made: moves a fake clock, or sleeps.
    async fn advance(&self, by: Duration);

    /// What the balancers support; everything unless overridden.
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    /// The TTL the timed scenarios set (see the module's *Time*). A store whose expiry is
    /// coarse (whole seconds) needs a longer one.
    fn ttl(&self) -> Duration {
        DEFAULT_TTL
    }
}

/// The parts of the [`Balancer`] contract an implementation supports. A part declared
/// absent is checked to be harmless instead (its calls succeed and change nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Each stream's placement is stored, chosen by the given [`Strategy`] among the
    /// origins that accept new streams, and kept while its origin keeps it: firm and
    /// tentative placements, [`Balancer::touch`], [`Balancer::release`],
    /// [`Balancer::placements`], [`OriginStatus::streams`](crate::OriginStatus::streams)
    /// and `max_streams`. Without it, picks must still be sticky while the origins do not
    /// change, avoid dead origins, and keep publishers off draining ones.
    pub placements: bool,
    /// [`Balancer::mark_down`] and [`Balancer::mark_up`] hold origins down.
    pub health_marks: bool,
    /// [`Balancer::report_connections`] is summed into
    /// [`OriginStatus::connections`](crate::OriginStatus::connections), which
    /// `max_connections` limits.
    pub connection_reports: bool,
}

impl Capabilities {
    /// The whole contract.
    pub const ALL: Capabilities = Capabilities {
        placements: true,
        health_marks: true,
        connection_reports: true,
    };
}

/// Runs every scenario against `h`, one after the other, naming each on stderr.
/// [`conformance_tests!`](crate::conformance_tests) is usually nicer: one test per scenario.
pub async fn run_all(h: &dyn Harness) {
    crate::conformance_tests! { @scenarios run (h) }
}

/// Runs `future` to completion on a new multi-threaded tokio runtime (two workers, I/O and
/// timers enabled), as each test of [`conformance_tests!`](crate::conformance_tests) does:
/// the racing scenarios need real threads, and a harness may need tokio's I/O.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(future),
        Err(e) => panic!("cannot start a tokio runtime for the conformance suite: {e}"),
    }
}

/// Expands to one `#[test]` per conformance scenario, each running it on
/// [`testing::block_on`](crate::testing::block_on) against a harness made by the given
/// expression (evaluated afresh in every test, inside the runtime). Invoke it in a module
/// of its own, so the tests read `conformance::<scenario>`.
///
/// ```ignore
/// #[cfg(test)]
/// mod conformance {
///     lb_core::conformance_tests!(super::MyHarness::default());
/// }
/// ```
#[macro_export]
macro_rules! conformance_tests {
    // The one list of scenarios, handed to the arm named by `$then`.
    (@scenarios $then:ident $args:tt) => {
        $crate::conformance_tests! { @$then $args
            a_stream_sticks_to_its_origin
            concurrent_first_picks_agree
            no_origin_says_why
            a_dead_origin_loses_its_streams_at_the_next_pick
            static_origins_never_expire
            a_restart_replaces_the_old_process_at_once
            draining_moves_publishers_keeps_players_and_refuses_new_streams
            max_streams_limits_firm_placements
            least_load_follows_the_reported_cpu
            stream_counts_follow_re_placement
            placements_expire_unless_picked_or_touched
            placement_rules_in_sequence
            a_marked_down_origin_loses_its_streams_until_the_mark_ends
            a_registered_origin_marked_down_stays_down_through_heartbeats
            connection_reports_sum_per_proxy_replace_and_expire
            max_connections_refuses_new_streams
            sessions_expire_when_idle_and_renew_when_used
            plays_of_unknown_streams_take_no_capacity
            a_tentative_placement_expires_after_its_ttl
            release_forgets_only_a_tentative_placement_on_that_origin
            a_publish_makes_a_tentative_placement_firm
            an_unconfirmed_publishers_placement_lasts_the_tentative_ttl
            touch_recreates_a_missing_placement_but_never_overrides_one
            a_live_player_keeps_a_tentative_placement_and_a_live_publisher_firms_it
            independent_balancers_agree_under_rendezvous
            only_the_streams_of_a_joining_or_leaving_origin_move
            the_load_bound_sheds_to_the_next_origin_in_hash_order
            rendezvous_follows_weights
        }
    };
    (@tests ($harness:expr) $($scenario:ident)+) => {
        $(
            #[test]
            fn $scenario() {
                $crate::testing::block_on(async {
                    let harness = $harness;
                    $crate::testing::scenarios::$scenario(&harness).await;
                });
            }
        )+
    };
    (@run ($harness:expr) $($scenario:ident)+) => {
        $(
            ::std::eprintln!("lb_core::testing: {}", ::std::stringify!($scenario));
            $crate::testing::scenarios::$scenario($harness).await;
        )+
    };
    ($harness:expr $(,)?) => {
        $crate::conformance_tests! { @scenarios tests ($harness) }
    };
}

/// A registered origin as SRS's heartbeat describes it: id `{server}-svc{pid}-{pid}`,
/// address 127.0.0.1, RTMP on 19350.
pub fn origin(server: &str, pid: &str) -> Origin {
    let body = format!(
        r#"{{"ip":"127.0.0.1","server":"{server}","service":"svc{pid}","pid":"{pid}","rtmp":["19350"]}}"#
    );
    match Registration::from_json(body.as_bytes()).and_then(Registration::into_origin) {
        Ok(origin) => origin,
        Err(e) => panic!("origin({server:?}, {pid:?}): {e}"),
    }
}

/// A configured origin (never expires): [`origin`]`(name, "1")`, static.
pub fn static_origin(name: &str) -> Origin {
    let mut o = origin(name, "1");
    o.source = OriginSource::Static;
    o
}

/// The stream `live/{stream}` on the default vhost.
pub fn key(stream: &str) -> StreamKey {
    match StreamKey::new(None, "live", stream) {
        Ok(key) => key,
        Err(e) => panic!("key({stream:?}): {e}"),
    }
}

/// A part of the contract a scenario may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capability {
    Placements,
    HealthMarks,
    ConnectionReports,
}

impl Capability {
    fn declared(self, caps: Capabilities) -> bool {
        match self {
            Capability::Placements => caps.placements,
            Capability::HealthMarks => caps.health_marks,
            Capability::ConnectionReports => caps.connection_reports,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Capability::Placements => "stored placements",
            Capability::HealthMarks => "health marks",
            Capability::ConnectionReports => "connection reports",
        }
    }
}

/// One scenario's run: it names the scenario and the balancer when the scenario fails.
struct Run<'h> {
    h: &'h dyn Harness,
    scenario: &'static str,
    balancer: Mutex<&'static str>,
}

impl<'h> Run<'h> {
    fn start(h: &'h dyn Harness, scenario: &'static str) -> Self {
        Run {
            h,
            scenario,
            balancer: Mutex::new("?"),
        }
    }

    async fn balancer(
        &self,
        config: BalancerConfig,
        strategy: Box<dyn Strategy>,
    ) -> Arc<dyn Balancer> {
        let lb = self.h.balancer(config, strategy).await;
        *self.balancer.lock().unwrap_or_else(|e| e.into_inner()) = lb.name();
        lb
    }

    fn has(&self, capability: Capability) -> bool {
        capability.declared(self.h.capabilities())
    }

    /// Whether the balancer declares every capability in `needed`; for each one it lacks,
    /// checks that the part is harmless instead.
    async fn needs(&self, needed: &[Capability]) -> bool {
        let mut all = true;
        for &capability in needed {
            if self.has(capability) {
                continue;
            }
            all = false;
            eprintln!(
                "lb_core::testing: `{}` needs {}, which the harness declares absent: \
                 checking that they are accepted and ignored instead",
                self.scenario,
                capability.describe()
            );
            match capability {
                Capability::Placements => self.placements_are_absent().await,
                Capability::HealthMarks => self.marks_are_absent().await,
                Capability::ConnectionReports => self.reports_are_absent().await,
            }
        }
        all
    }

    async fn placements_are_absent(&self) {
        let lb = self
            .balancer(
                BalancerConfig::default(),
                crate::StrategyKind::Random.build(),
            )
            .await;
        let a = origin("a", "1");
        ok(lb.register(a.clone()).await, "register");
        let k = key("cam");
        assert_eq!(pick(&lb, &k, PickIntent::Publish).await.id, a.id);
        ok(
            lb.touch(&[live(&k, &a.id, true)]).await,
            "touch (without stored placements)",
        );
        ok(
            lb.release(&k, &a.id).await,
            "release (without stored placements)",
        );
        assert_eq!(
            ok(lb.placements().await, "placements"),
            [],
            "a balancer without stored placements lists none"
        );
        assert_eq!(
            status(&lb, &a.id).await.streams,
            0,
            "a balancer without stored placements counts no streams"
        );
    }

    async fn marks_are_absent(&self) {
        let lb = self
            .balancer(
                BalancerConfig::default(),
                crate::StrategyKind::Random.build(),
            )
            .await;
        let a = static_origin("a");
        ok(lb.register(a.clone()).await, "register");
        ok(
            lb.mark_down(&a.id, "probe failed", Duration::from_secs(60))
                .await,
            "mark_down (without health marks)",
        );
        let s = status(&lb, &a.id).await;
        assert_eq!(
            (s.alive, s.down),
            (true, None),
            "a balancer without health marks ignores mark_down"
        );
        assert_eq!(pick(&lb, &key("cam"), PickIntent::Publish).await.id, a.id);
        ok(lb.mark_up(&a.id).await, "mark_up (without health marks)");
    }

    async fn reports_are_absent(&self) {
        let lb = self
            .balancer(
                BalancerConfig::default(),
                crate::StrategyKind::Random.build(),
            )
            .await;
        let a = origin("a", "1");
        ok(lb.register(a.clone()).await, "register");
        ok(
            lb.report_connections("proxy-1", &[(a.id.clone(), 5)], Duration::from_secs(60))
                .await,
            "report_connections (without connection reports)",
        );
        assert_eq!(
            status(&lb, &a.id).await.connections,
            0,
            "a balancer without connection reports counts no connections"
        );
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let balancer = *self.balancer.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!(
                "lb_core::testing: conformance scenario `{}` failed against the `{balancer}` \
                 balancer (the assertion above says what was expected)",
                self.scenario
            );
        }
    }
}

/// The value of a call that must succeed, or a panic naming the call.
#[track_caller]
fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

/// The origin a pick that must succeed returns.
async fn pick(lb: &Arc<dyn Balancer>, k: &StreamKey, intent: PickIntent) -> Origin {
    match lb.pick(k, intent).await {
        Ok(origin) => origin,
        Err(e) => panic!("{intent:?} pick of {k} failed: {e}"),
    }
}

/// The server a pick that must succeed returns.
async fn server(lb: &Arc<dyn Balancer>, stream: &str, intent: PickIntent) -> String {
    pick(lb, &key(stream), intent).await.server
}

/// One origin's status, which must be known.
async fn status(lb: &Arc<dyn Balancer>, id: &OriginId) -> crate::OriginStatus {
    match lb.origin(id).await {
        Ok(Some(status)) => status,
        Ok(None) => panic!("origin {id} is not listed"),
        Err(e) => panic!("origin({id}) failed: {e}"),
    }
}

/// A per-server value of every origin's status, in server order.
async fn per_server<T>(
    lb: &Arc<dyn Balancer>,
    value: impl Fn(&crate::OriginStatus) -> T,
) -> Vec<(String, T)> {
    let mut all: Vec<(String, T)> = ok(lb.origins().await, "origins")
        .iter()
        .map(|s| (s.origin.server.clone(), value(s)))
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Firm streams per server, in server order.
async fn streams(lb: &Arc<dyn Balancer>) -> Vec<(String, usize)> {
    per_server(lb, |s| s.streams).await
}

fn live(k: &StreamKey, origin: &OriginId, publishing: bool) -> LiveStream {
    LiveStream {
        key: k.clone(),
        origin: origin.clone(),
        publishing,
    }
}

/// Expected `(server, n)` pairs, for comparing with [`streams`] and the like.
fn expect<T: Copy>(pairs: &[(&str, T)]) -> Vec<(String, T)> {
    pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}
