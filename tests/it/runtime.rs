//! The durable runtime in process: the single-writer core over a real sled
//! store, driven by a hand-moved clock, checked against the simulator; the
//! same through the daemon; reloads; damaged stores.
//!
//! A week of campaign runs in milliseconds because nothing waits: the test
//! moves time straight to the next due instant.

use crate::support::repo;
use crate::support::week as agenda;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::Duration;

use agenda::{applicant, at, predict, week, Act};
use nudge::channels::{read_messages, Backend, Channels, FileChannel, Message, SendError};
use nudge::engine::{Channel, Instant, Machine};
use nudge::runtime::api::EventRequest;
use nudge::runtime::campaigns::Campaigns;
use nudge::runtime::clock::{Clock, ManualClock};
use nudge::runtime::core::{Command, Core, Reply, This, PREMARKED_AT_MOST};
use nudge::runtime::daemon::{self, Options, Sources};
use nudge::runtime::refusal::Refusal;
use nudge::store::{
    raw, CandidateRecord, Enrollment, LogKind, MemoryStore, OutboxEntry, SendKey, SendStatus,
    SledStore, SledTxn, Store, StoreError, Transaction,
};
use nudge::templates::Templates;

const WAREHOUSE: &str = "warehouse_associate";

/// A throwaway folder with campaigns, the repository's templates and a
/// store (on sled in the folder, or in memory).
struct Fixture {
    dir: tempfile::TempDir,
    memory: MemoryStore,
}

/// A store the core-level tests run on: each runs on both.
trait StoreFor: Store {
    /// The fixture's store (the same records each time).
    fn of(fx: &Fixture) -> Self;

    /// Records the store keeps of its delivery queue besides the sends
    /// (the sled store's journal records).
    fn journal_records(&self) -> usize {
        0
    }
}

impl StoreFor for SledStore {
    fn of(fx: &Fixture) -> Self {
        SledStore::open(&fx.store_dir(), 8 << 20).unwrap()
    }

    fn journal_records(&self) -> usize {
        self.scan_raw(b"q").count() + self.scan_raw(b"f").count()
    }
}

impl StoreFor for MemoryStore {
    fn of(fx: &Fixture) -> Self {
        fx.memory.clone()
    }
}

/// Runs each named test body (generic over [`StoreFor`]) on the sled store
/// and on the memory store: `NAME::sled` and `NAME::memory`.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sled() {
                super::$name::<nudge::store::SledStore>()
            }

            #[test]
            fn memory() {
                super::$name::<nudge::store::MemoryStore>()
            }
        }
    )*};
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("campaigns")).unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        for entry in std::fs::read_dir(repo().join("templates")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.path().join("templates").join(entry.file_name()),
            )
            .unwrap();
        }
        Fixture {
            dir,
            memory: MemoryStore::new(),
        }
    }

    fn warehouse() -> Fixture {
        let fx = Fixture::new();
        fx.write_campaign("warehouse.nudge", &warehouse_text());
        fx
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn campaigns_dir(&self) -> PathBuf {
        self.path().join("campaigns")
    }

    fn templates_dir(&self) -> PathBuf {
        self.path().join("templates")
    }

    fn store_dir(&self) -> PathBuf {
        self.path().join("store")
    }

    fn write_campaign(&self, name: &str, text: &str) {
        std::fs::write(self.campaigns_dir().join(name), text).unwrap();
    }

    fn load(&self) -> Campaigns {
        match Campaigns::load(&self.campaigns_dir(), Some(&self.templates_dir())) {
            Ok((campaigns, _, _)) => campaigns,
            Err(failure) => panic!("{}", daemon::render_failure(&failure)),
        }
    }

    fn sources(&self) -> Sources {
        Sources {
            campaigns: self.campaigns_dir(),
            templates: self.templates_dir(),
        }
    }

    fn core(&self) -> Core {
        self.core_on::<SledStore>()
    }

    fn core_on<S: StoreFor>(&self) -> Core<S> {
        let templates = Templates::load(&self.templates_dir()).unwrap();
        Core::new(
            S::of(self),
            self.load(),
            Some(Arc::new(templates)),
            crate::support::settings(),
        )
    }
}

/// An applicant with a phone (so texted) in Chicago.
fn texter(id: &'static str, name: &'static str, phone: &'static str) -> Act {
    applicant(
        id,
        &[
            ("name", name),
            ("phone", phone),
            ("timezone", "America/Chicago"),
        ],
    )
}

fn warehouse_text() -> String {
    std::fs::read_to_string(repo().join("campaigns/warehouse.nudge")).unwrap()
}

/// What the test saw go out: candidate id → (template, channel, instant).
type Sends = BTreeMap<String, Vec<(String, String, Instant)>>;

fn record(sends: &mut Sends, messages: Vec<Message>) {
    for m in messages {
        sends.entry(m.candidate.clone()).or_default().push((
            m.template.clone(),
            m.channel.name().to_string(),
            m.scheduled_at,
        ));
    }
}

/// Records what the core handed out at `now`: on a clock that stops at
/// every due instant, nothing comes out late.
fn record_at(sends: &mut Sends, messages: Vec<Message>, now: Instant) {
    for m in &messages {
        assert_eq!(
            m.scheduled_at, now,
            "{} went out at {now}, after its instant",
            m.key
        );
    }
    record(sends, messages);
}

/// Runs the core like a manual clock would: fire what falls due before the
/// next act, then the act at its instant, until nothing is left before
/// `until`. Returns external id → candidate id.
fn drive<S: Store>(
    core: &mut Core<S>,
    agenda: &mut VecDeque<(Instant, Act)>,
    until: Instant,
    sends: &mut Sends,
    ids: &mut HashMap<String, String>,
) {
    drive_with(core, agenda, until, sends, ids, &mut |_| {});
}

/// [`drive`], calling `before_fire` with the core before each firing.
fn drive_with<S: Store>(
    core: &mut Core<S>,
    agenda: &mut VecDeque<(Instant, Act)>,
    until: Instant,
    sends: &mut Sends,
    ids: &mut HashMap<String, String>,
    before_fire: &mut dyn FnMut(&Core<S>),
) {
    let mut stalled = 0;
    for _ in 0..100_000 {
        let timer = core.next_due().unwrap().filter(|t| *t <= until);
        let act = agenda.front().map(|(t, _)| *t).filter(|t| *t <= until);
        match (timer, act) {
            (Some(t), a) if a.is_none_or(|a| t < a) => {
                before_fire(core);
                // Nothing fires when a batch meets a damaged record; the
                // next one passes over it.
                let (fired, out) = core.fire_due(t, 1024).unwrap();
                stalled = if fired == 0 { stalled + 1 } else { 0 };
                assert!(stalled < 3, "the timers due at {t} do not fire");
                record_at(sends, out, t);
            }
            (_, Some(_)) => {
                let (now, act) = agenda.pop_front().unwrap();
                let (replies, out) = core.execute(vec![act.command(WAREHOUSE)], now).unwrap();
                match (&act, replies.into_iter().next()) {
                    (Act::Enroll(a), Some(Reply::Enrolled(r))) => {
                        assert!(r.enrolled, "{} enrolled twice", a.id);
                        ids.insert(a.id.to_string(), r.candidate);
                    }
                    (Act::Event { .. }, Some(Reply::Event(_))) => {}
                    (act, reply) => panic!("{act:?} answered {reply:?}"),
                }
                record_at(sends, out, now);
            }
            _ => return,
        }
    }
    panic!("the core never ran out of due timers");
}

fn machine<S: Store>(core: &Core<S>) -> Machine {
    core.campaigns()
        .get(WAREHOUSE)
        .expect("the warehouse campaign is loaded")
        .machine
        .clone()
}

fn candidate(store: &impl Store, id: &str) -> CandidateRecord {
    store.candidate(id).unwrap().expect("candidate stored")
}

fn enrollment(store: &impl Store, id: &str) -> Enrollment {
    store
        .enrollment(id, WAREHOUSE)
        .unwrap()
        .expect("enrollment stored")
}

fn logged_sends(store: &impl Store, id: &str) -> Vec<(String, String, Instant)> {
    store
        .history(id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.kind {
            LogKind::Sent {
                template, channel, ..
            } => Some((template, channel, e.at)),
            _ => None,
        })
        .collect()
}

/// Every candidate's sends and outcome are the simulator's.
fn assert_as_simulated(
    store: &impl Store,
    machine: &Machine,
    agenda: &[(Instant, Act)],
    ids: &HashMap<String, String>,
    sends: &Sends,
) {
    for (external, id) in ids {
        let record = candidate(store, id);
        let (expected, outcome) = predict(machine, &record, agenda, external);
        let got = sends.get(id).cloned().unwrap_or_default();
        assert_eq!(got, expected, "{external} ({id}): dispatched sends");
        assert_eq!(
            logged_sends(store, id),
            expected,
            "{external} ({id}): sends in the log"
        );
        assert_eq!(
            enrollment(store, id).engine.outcome,
            outcome,
            "{external} ({id}): outcome"
        );
    }
}

/// The week's agenda driven through a core to its end, `before_fire`
/// called before each firing, and checked against the simulator.
struct Week<S: Store> {
    _fx: Fixture,
    core: Core<S>,
    ids: HashMap<String, String>,
    sends: Sends,
}

fn run_week<S: StoreFor>(before_fire: &mut dyn FnMut(&Core<S>)) -> Week<S> {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let agenda = week();
    let mut queue: VecDeque<_> = agenda.clone().into();
    let (mut sends, mut ids) = (Sends::new(), HashMap::new());
    drive_with(
        &mut core,
        &mut queue,
        at("2027-01-01T00:00:00Z"),
        &mut sends,
        &mut ids,
        before_fire,
    );
    assert_eq!(ids.len(), 5);
    assert!(core.next_due().unwrap().is_none(), "timers left over");
    let machine = machine(&core);
    assert_as_simulated(core.store(), &machine, &agenda, &ids, &sends);
    Week {
        _fx: fx,
        core,
        ids,
        sends,
    }
}

fn a_week_of_the_warehouse_campaign_runs_as_the_simulator_predicts<S: StoreFor>() {
    let Week {
        _fx,
        core,
        ids,
        sends,
    } = run_week::<S>(&mut |_| {});

    // The scenario covers what it claims to.
    let outcome = |who: &str| enrollment(core.store(), &ids[who]).engine.outcome;
    assert_eq!(outcome("ana").as_deref(), Some("expired"));
    assert_eq!(outcome("cy").as_deref(), Some("completed"));
    assert_eq!(outcome("di").as_deref(), Some("opted_out"));
    let total: usize = sends.values().map(Vec::len).sum();
    assert!(total >= 12, "only {total} sends: {sends:#?}");
    // Cy's first message is Spanish, in her own zone's window.
    let cy = &sends[&ids["cy"]];
    assert_eq!(cy[0].1, "email", "{cy:?}");

    // Every send is in the outbox, rendered, waiting for a dispatcher.
    let outbox = core.store().sends().unwrap();
    assert_eq!(outbox.len(), total);
    for entry in &outbox {
        assert_eq!(entry.status, SendStatus::Queued, "{}", entry.message.key);
        assert!(!entry.message.body.is_empty());
    }
    let cy_invite = outbox
        .iter()
        .map(|e| &e.message)
        .find(|m| m.candidate == ids["cy"] && m.template.starts_with("invite-"))
        .unwrap();
    assert!(
        cy_invite.subject.is_some(),
        "an email has a subject: {cy_invite:?}"
    );
    assert!(
        cy_invite.body.contains("https://interview.example/i/"),
        "{}",
        cy_invite.body
    );
}

/// Every key and value in the store.
fn snapshot(store: &SledStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store
        .scan_raw(b"")
        .map(|item| {
            let (k, v) = item.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// The daemon rehearses the coming timers while it waits for them: the
/// rehearsal writes nothing, and the week goes as if it had not happened.
#[test]
fn rehearsing_the_coming_timers_changes_nothing() {
    let mut rehearsals = 0;
    run_week::<SledStore>(&mut |core| {
        let next = core.next_due().unwrap().expect("a timer is due");
        let before = snapshot(core.store());
        let last = core.rehearse(512).unwrap();
        assert!(
            last.is_some_and(|last| last >= next),
            "rehearsed up to {last:?}, the next timer is due at {next}"
        );
        assert!(
            snapshot(core.store()) == before,
            "a rehearsal wrote to the store"
        );
        assert_eq!(core.next_due().unwrap(), Some(next));
        rehearsals += 1;
    });
    assert!(rehearsals >= 10, "only {rehearsals} rehearsals");
}

fn enrolling_the_same_external_id_twice_is_one_candidate<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let now = at("2026-11-26T15:00:00Z");
    let ana = applicant("ana-1", &[("name", "Ana"), ("phone", "+15550100")]);
    let both = vec![ana.command(WAREHOUSE), ana.command(WAREHOUSE)];
    let (replies, out) = core.execute(both, now).unwrap();
    let [Reply::Enrolled(first), Reply::Enrolled(second)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(first.candidate, second.candidate);
    assert!(first.enrolled && !second.enrolled);
    assert_eq!(first.link, second.link);
    assert_eq!(out.len(), 1, "one invite, not two: {out:?}");
    // The link's token: the candidate id and 128 random bits in hex.
    let token = first.link.rsplit('/').next().unwrap();
    let (id, secret) = token.split_once('-').unwrap();
    assert_eq!(id, first.candidate);
    assert_eq!(secret.len(), 32, "{token}");
    assert!(
        secret
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{token}"
    );
}

fn an_event_from_the_future_is_refused_and_a_repeated_event_counts_once<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let now = at("2026-11-26T15:00:00Z");
    let ana = applicant("ana-2", &[("name", "Ana"), ("phone", "+15550100")]);
    let (replies, _) = core.execute(vec![ana.command(WAREHOUSE)], now).unwrap();
    let [Reply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    let event = |at: Option<&str>, id: Option<&str>| {
        Command::Event(EventRequest {
            candidate: enrolled.candidate.clone(),
            event: "clicked".into(),
            at: at.map(str::to_string),
            fields: Default::default(),
            id: id.map(str::to_string),
        })
    };
    let (replies, _) = core
        .execute(vec![event(Some("2026-11-27T15:00:00Z"), None)], now)
        .unwrap();
    let [Reply::Error(e)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert!(matches!(e, Refusal::EventInFuture { .. }), "{e:?}");
    assert!(e.to_string().contains("in the future"), "{e}");
    assert_eq!(
        enrollment(core.store(), &enrolled.candidate).state_name,
        "invite"
    );

    let twice = vec![event(None, Some("hook-1")), event(None, Some("hook-1"))];
    let (replies, _) = core.execute(twice, now).unwrap();
    let [Reply::Event(first), Reply::Event(second)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert!(!first.repeated && second.repeated);
    assert_eq!(first.effects, second.effects);
    let received = core
        .store()
        .history(&enrolled.candidate)
        .unwrap()
        .into_iter()
        .filter(|e| matches!(&e.kind, LogKind::Received { event, .. } if event == "clicked"))
        .count();
    assert_eq!(received, 1, "a repeated event is recorded once");
}

fn a_send_queued_before_an_opt_out_never_reaches_the_channel<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    // Thursday 09:00 in Chicago: the invite is due at once and is queued.
    let now = at("2026-11-26T15:00:00Z");
    let bo = texter("bo-3", "Bo", "+15550100");
    let (replies, out) = core.execute(vec![bo.command(WAREHOUSE)], now).unwrap();
    let [Reply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(out.len(), 1, "{out:?}");
    let stop = Command::Event(EventRequest {
        candidate: enrolled.candidate.clone(),
        event: "opted_out".into(),
        ..Default::default()
    });
    core.execute(vec![stop], now).unwrap();
    // The dispatcher now asks to hand the queued invite to its channel.
    let (replies, _) = core
        .execute(vec![Command::MarkInFlight(vec![out[0].key.clone()])], now)
        .unwrap();
    let [Reply::Cleared(cleared)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert!(
        cleared.is_empty(),
        "an opted-out candidate's send was cleared: {cleared:?}"
    );
    let entry: OutboxEntry = core.store().send(SendKey::of(&out[0])).unwrap().unwrap();
    assert!(
        matches!(&entry.status, SendStatus::Failed(why) if why.contains("opted out")),
        "{entry:?}"
    );
}

/// A timer whose enrollment moved on stays in its record but is passed
/// over when it comes due, and its record goes once it has been taken.
#[test]
fn a_timer_left_behind_by_an_event_is_passed_over() {
    let fx = Fixture::warehouse();
    let mut core = fx.core();
    // Thursday 09:00 in Chicago: the invite goes, the reminder is due
    // Friday 09:00 (after 24h).
    let t0 = at("2026-11-26T15:00:00Z");
    let ana = applicant(
        "stale-ana",
        &[
            ("name", "Ana"),
            ("phone", "+15550100"),
            ("role", "Warehouse Associate"),
            ("timezone", "America/Chicago"),
        ],
    );
    let (replies, out) = core.execute(vec![ana.command(WAREHOUSE)], t0).unwrap();
    let [Reply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(out.len(), 1, "the invite: {out:?}");
    let id = enrolled.candidate.clone();
    // A click an hour later: `clicked`, whose `after 12h` is due at 22:00 Chicago.
    let click = Command::Event(EventRequest {
        candidate: id.clone(),
        event: "clicked".into(),
        ..Default::default()
    });
    core.execute(vec![click], t0 + Duration::hours(1)).unwrap();
    let reminder_due = t0 + Duration::hours(24);
    let armed: Vec<Instant> = core
        .store()
        .timers_until(None)
        .unwrap()
        .iter()
        .filter(|t| t.candidate == id)
        .map(|t| t.due)
        .collect();
    assert!(
        armed.contains(&reminder_due) && armed.contains(&(t0 + Duration::hours(13))),
        "the stale reminder timer and the live one are both stored: {armed:?}"
    );
    assert_eq!(
        enrollment(core.store(), &id).timer,
        Some(t0 + Duration::hours(13))
    );
    // At 13h the live timer moves Ana to `reminder` (its text goes by email,
    // which she has not got: skipped); its own `after 24h` is due at 37h.
    let (fired, _) = core.fire_due(t0 + Duration::hours(13), 100).unwrap();
    assert_eq!(fired, 1);
    assert_eq!(enrollment(core.store(), &id).state_name, "reminder");
    let history = core.store().history(&id).unwrap().len();
    // At 24h only the stale timer is due: it is taken and does nothing.
    let (fired, out) = core.fire_due(reminder_due, 100).unwrap();
    assert_eq!(fired, 1, "the stale timer is taken");
    assert!(out.is_empty(), "{out:?}");
    let enr = enrollment(core.store(), &id);
    assert_eq!(enr.state_name, "reminder");
    assert_eq!(enr.timer, Some(t0 + Duration::hours(37)));
    assert_eq!(core.store().history(&id).unwrap().len(), history);
    let left: Vec<Instant> = core
        .store()
        .timers_until(None)
        .unwrap()
        .iter()
        .map(|t| t.due)
        .collect();
    assert_eq!(
        left,
        vec![t0 + Duration::hours(37)],
        "records taken are gone"
    );
    assert_eq!(core.next_due().unwrap(), Some(t0 + Duration::hours(37)));
}

/// The delivery journal: queued, in flight and settled sends as the store
/// reads them back after a restart, and no record left once all settle.
#[test]
fn the_delivery_journal_survives_a_reopen_and_empties_when_sends_settle() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    let mut keys = Vec::new();
    {
        let mut core = fx.core();
        let people = [
            ("j-0", "Al", "+15550100"),
            ("j-1", "Bea", "+15550101"),
            ("j-2", "Cal", "+15550102"),
        ];
        for (id, name, phone) in people {
            let who = texter(id, name, phone);
            let (_, out) = core.execute(vec![who.command(WAREHOUSE)], now).unwrap();
            keys.extend(out.into_iter().map(|m| m.key));
        }
        assert_eq!(keys.len(), 3);
        // Two go to their channel; the answer for one of them arrives.
        core.execute(vec![Command::MarkInFlight(keys[..2].to_vec())], now)
            .unwrap();
        let answer = Command::Delivered {
            key: keys[0].clone(),
            outcome: Ok(Default::default()),
        };
        core.execute(vec![answer], now).unwrap();
        assert_eq!(core.store().undelivered(), 2);
    }
    // As after a crash: the store is opened again and read back.
    let mut core = fx.core();
    let mut queued = core.store().queued_sends();
    queued.sort();
    let mut expected = vec![(keys[1].clone(), true), (keys[2].clone(), false)];
    expected.sort();
    assert_eq!(queued, expected);
    let pending = core.recover(|_| true, now).unwrap();
    let mut found: Vec<(String, bool)> = pending
        .iter()
        .map(|p| (p.message.key.clone(), p.was_in_flight))
        .collect();
    found.sort();
    assert_eq!(found, expected);
    // Both go and are answered: nothing is left queued, and no journal
    // record is left behind.
    core.execute(vec![Command::MarkInFlight(keys[1..].to_vec())], now)
        .unwrap();
    deliver(&mut core, keys[1..].to_vec(), now);
    assert_journal_empty(&core);
}

/// Records each of `keys` delivered at `now`.
fn deliver<S: Store>(core: &mut Core<S>, keys: Vec<String>, now: Instant) {
    let answers = keys
        .into_iter()
        .map(|key| Command::Delivered {
            key,
            outcome: Ok(Default::default()),
        })
        .collect();
    core.execute(answers, now).unwrap();
}

/// Nothing is queued, and no journal record is left behind.
fn assert_journal_empty<S: StoreFor>(core: &Core<S>) {
    assert_eq!(core.store().undelivered(), 0);
    let records = core.store().journal_records();
    assert_eq!(records, 0, "journal records left after every send settled");
}

/// A channel that drops a repeated key gets its sends marked in flight by
/// the commit that queues them (the daemon then hands them over without a
/// commit of its own); after a crash they go again as in flight, with no
/// possible duplicate recorded, and a retry is marked likewise.
fn sends_to_a_premarked_channel_are_in_flight_from_the_commit_that_queues_them<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    let premarked = |core: &mut Core<S>| core.mark_in_flight_when_queued(vec![Channel::Sms]);
    let key = {
        let mut core = fx.core_on::<S>();
        premarked(&mut core);
        let who = texter("p-0", "Al", "+15550100");
        let (_, out) = core.execute(vec![who.command(WAREHOUSE)], now).unwrap();
        let [invite] = &out[..] else {
            panic!("one invite expected, got {out:?}")
        };
        assert_eq!(invite.channel, Channel::Sms);
        assert!(invite.in_flight, "the dispatcher would mark it again");
        assert_eq!(
            core.store().queued_sends(),
            vec![(invite.key.clone(), true)]
        );
        invite.key.clone()
    };
    // As after a crash: it goes again as in flight, and since the channel
    // drops a repeat, nothing is recorded as a possible duplicate.
    let mut core = fx.core_on::<S>();
    premarked(&mut core);
    let pending = core.recover(|c| c == Channel::Sms, now).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].was_in_flight);
    let entry = core
        .store()
        .send(SendKey::parse(&key).unwrap())
        .unwrap()
        .unwrap();
    assert!(!entry.possible_duplicate);
    // A failure worth retrying takes it off the journal; the retry is in
    // flight from the commit that queues it again.
    let failed = Command::Delivered {
        key: key.clone(),
        outcome: Err(SendError::Retryable("the provider timed out".into())),
    };
    core.execute(vec![failed], now).unwrap();
    assert_eq!(core.store().queued_sends(), vec![]);
    // (Within the hour: a retry a day later would be late, and skipped.)
    let out = core.retry_due(now + Duration::hours(1), 10).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].in_flight);
    assert_eq!(core.store().queued_sends(), vec![(key.clone(), true)]);
    deliver(&mut core, vec![key], now + Duration::hours(1));
    assert_journal_empty(&core);
}

/// Past `PREMARKED_AT_MOST` sends in flight, sends are queued unmarked
/// (a backlog waits as queued, so a crash leaves about that many in
/// doubt), each message says which it is, and marking resumes as sends
/// settle.
fn a_backlog_past_the_premarked_bound_waits_as_queued<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    let mut core = fx.core_on::<S>();
    core.mark_in_flight_when_queued(Channel::ALL.to_vec());
    let mut out = Vec::new();
    // Some invites wait for the candidate's window: enroll enough that
    // more than the bound go now.
    for first in (0..2 * PREMARKED_AT_MOST).step_by(100) {
        let commands = (first..first + 100).map(numbered).collect();
        out.extend(core.execute(commands, now).unwrap().1);
    }
    let journal: HashMap<String, bool> = core.store().queued_sends().into_iter().collect();
    assert_eq!(journal.len(), out.len());
    assert!(out.len() > PREMARKED_AT_MOST + 100, "{} sends", out.len());
    for m in &out {
        assert_eq!(
            journal[&m.key], m.in_flight,
            "{} disagrees with the journal",
            m.key
        );
    }
    let marked = out.iter().filter(|m| m.in_flight).count();
    // The two threads that share a batch's enrollments may each reach it.
    assert!(
        (PREMARKED_AT_MOST..PREMARKED_AT_MOST + 100).contains(&marked),
        "{marked} marked in flight"
    );
    assert_eq!(core.store().in_flight(), marked);
    // The marked ones are answered; what is queued next is marked again.
    let marked_keys = out.iter().filter(|m| m.in_flight).map(|m| m.key.clone());
    deliver(&mut core, marked_keys.collect(), now);
    assert_eq!(core.store().in_flight(), 0);
    let (_, more) = core
        .execute(vec![numbered(2 * PREMARKED_AT_MOST + 100)], now)
        .unwrap();
    assert!(!more.is_empty() && more.iter().all(|m| m.in_flight));
}

/// Drives the in-process daemon: wait until it has done everything due by
/// the clock, then move the clock to the next thing to happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_on_a_manual_clock_delivers_the_week_to_files() {
    let fx = Fixture::warehouse();
    let out = fx.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = |name: &str| Backend::File(FileChannel::open(out.join(name)).unwrap());
    let channels = Channels::new(
        file("email.jsonl"),
        file("sms.jsonl"),
        file("whatsapp.jsonl"),
        file("webhook.jsonl"),
    );
    let agenda = week();
    let clock = Arc::new(ManualClock::new(agenda[0].0));
    let core = fx.core();
    let machine = machine(&core);
    let store = core.store().clone();
    let running = daemon::start(Options {
        core,
        channels: Arc::new(channels),
        clock: clock.clone(),
        concurrency: 4,
        rates: Vec::new(),
        batch: 64,
        sources: fx.sources(),
    })
    .unwrap();
    let handle = running.handle.clone();

    let mut queue: VecDeque<_> = agenda.clone().into();
    let mut ids: HashMap<String, String> = HashMap::new();
    for _ in 0..10_000 {
        // Settle: every enrollment's next wake lies after the clock, and
        // every send decided so far has gone (the next act may be an
        // opt-out, which stops a send still waiting for its channel).
        let now = clock.now();
        let next_wake = wait_for(StdDuration::from_secs(10), || {
            let mut wakes = Vec::new();
            for id in ids.values() {
                let view = handle.show(id).unwrap();
                for e in view.enrollments {
                    if let Some(w) = e.next_wake {
                        wakes.push(at(&w));
                    }
                }
            }
            let next = wakes.into_iter().min();
            (next.is_none_or(|w| w > now) && store.undelivered() == 0).then_some(next)
        })
        .unwrap_or_else(|| panic!("the daemon did not run what was due at {now}"));
        let act = queue.front().map(|(t, _)| *t);
        match (next_wake, act) {
            (Some(w), a) if a.is_none_or(|a| w < a) => clock.set(w),
            (_, Some(a)) => {
                clock.set(a);
                let (_, act) = queue.pop_front().unwrap();
                match act.command(WAREHOUSE) {
                    Command::Enroll(req) => {
                        let r = handle.enroll(req).await.unwrap();
                        let Act::Enroll(a) = act else { unreachable!() };
                        ids.insert(a.id.to_string(), r.candidate);
                    }
                    Command::Event(req) => {
                        handle.event(req).await.unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
            _ => break,
        }
    }

    // Each candidate's lines in the files are the simulator's sends.
    let mut expected = Sends::new();
    for (external, id) in &ids {
        let (sends, _) = predict(&machine, &candidate(&store, id), &agenda, external);
        expected.insert(id.clone(), sends);
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let delivered = wait_for(StdDuration::from_secs(10), || {
        let mut all = Vec::new();
        for name in ["email", "sms", "whatsapp", "webhook"] {
            all.extend(read_messages(out.join(format!("{name}.jsonl"))).unwrap());
        }
        (all.len() >= total).then_some(all)
    })
    .expect("every send reaches its file");
    let mut got = Sends::new();
    let mut sorted = delivered.clone();
    sorted.sort_by_key(|m| (m.scheduled_at, m.key.clone()));
    record(&mut got, sorted);
    for sends in expected.values_mut() {
        sends.sort_by_key(|s| s.2);
    }
    assert_eq!(got, expected);
    running.stop().await;

    // Delivered and recorded as such: nothing left in the queue.
    let outbox = store.sends().unwrap();
    assert_eq!(outbox.len(), total);
    assert!(outbox.iter().all(|e| e.status == SendStatus::Delivered));
    assert_eq!(store.scan_raw(b"q").count(), 0);
}

/// Polls `probe` every few milliseconds until it answers, or gives up.
fn wait_for<T>(limit: StdDuration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let start = std::time::Instant::now();
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(StdDuration::from_millis(2));
    }
}

/// The warehouse text with the `reminder` state taken out.
fn without_reminder() -> String {
    let text = warehouse_text()
        .replace("after 24h -> reminder", "after 24h -> last_call")
        .replace("after 12h -> reminder", "after 12h -> last_call");
    let start = text.find("  state reminder {").unwrap();
    let end = start + text[start..].find("  }\n").unwrap() + 4;
    format!("{}{}", &text[..start], &text[end..])
}

/// Two candidates who wait in `reminder` at 2026-11-29T20:00Z: their
/// reminders went out at 15:00Z, the next step is due at 15:00Z tomorrow.
fn two_in_reminder() -> Vec<(Instant, Act)> {
    let role = ("role", "Warehouse Associate");
    vec![
        (
            at("2026-11-27T02:30:00Z"),
            applicant(
                "ana",
                &[
                    ("name", "Ana Ruiz"),
                    ("phone", "+15550100"),
                    ("email", "ana@example.com"),
                    role,
                ],
            ),
        ),
        (
            at("2026-11-27T03:30:00Z"),
            applicant(
                "ben",
                &[
                    ("name", "Ben Ode"),
                    ("phone", "+15550101"),
                    ("email", "ben@example.com"),
                    role,
                ],
            ),
        ),
    ]
}

const RELOAD_AT: &str = "2026-11-29T20:00:00Z";

fn a_reload_that_removes_a_state_with_waiting_candidates_is_refused<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let agenda = two_in_reminder();
    let mut queue: VecDeque<_> = agenda.clone().into();
    let (mut sends, mut ids) = (Sends::new(), HashMap::new());
    drive(&mut core, &mut queue, at(RELOAD_AT), &mut sends, &mut ids);
    for id in ids.values() {
        assert_eq!(enrollment(core.store(), id).state_name, "reminder");
    }
    let running_version = core.campaigns().get(WAREHOUSE).unwrap().version.clone();

    fx.write_campaign("warehouse.nudge", &without_reminder());
    let err = core.reload(fx.load(), at(RELOAD_AT)).unwrap_err();
    assert!(matches!(err, Refusal::ReloadWouldStrand(_)), "{err:?}");
    for words in [
        "reload refused, the running version is kept",
        "`warehouse_associate`",
        "state `reminder` is removed but 2 candidates wait in it",
    ] {
        assert!(err.to_string().contains(words), "{words:?} in: {err}");
    }
    assert_eq!(
        core.campaigns().get(WAREHOUSE).unwrap().version,
        running_version
    );

    // They carry on as if nothing happened.
    drive(
        &mut core,
        &mut queue,
        at("2027-01-01T00:00:00Z"),
        &mut sends,
        &mut ids,
    );
    let machine = machine(&core);
    assert_as_simulated(core.store(), &machine, &agenda, &ids, &sends);
    for id in ids.values() {
        assert_eq!(
            enrollment(core.store(), id).engine.outcome.as_deref(),
            Some("expired")
        );
    }
}

fn a_valid_reload_keeps_every_timer_and_new_candidates_get_the_new_version<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let mut agenda = two_in_reminder();
    let mut queue: VecDeque<_> = agenda.clone().into();
    let (mut sends, mut ids) = (Sends::new(), HashMap::new());
    drive(&mut core, &mut queue, at(RELOAD_AT), &mut sends, &mut ids);

    // The reminders went out at 15:00Z, 5h ago. The reminder state now
    // waits 12h instead of 24h, so their next step is due at 03:00Z rather
    // than 15:00Z tomorrow, and the last call sends `nudge`, not
    // `last-call`.
    let edited = warehouse_text()
        .replacen(
            "send \"reminder\" via email\n    on clicked -> clicked\n    after 24h",
            "send \"reminder\" via email\n    on clicked -> clicked\n    after 12h",
            1,
        )
        .replace("send \"last-call\"", "send \"nudge\"");
    assert_ne!(edited, warehouse_text());
    fx.write_campaign("warehouse.nudge", &edited);
    let report = core.reload(fx.load(), at(RELOAD_AT)).unwrap();
    assert_eq!(report.changed, vec![WAREHOUSE.to_string()]);

    // A newcomer after the reload.
    let newcomer = (
        at("2026-11-30T01:00:00Z"),
        applicant(
            "cy",
            &[
                ("name", "Cy Diaz"),
                ("phone", "+15550102"),
                ("email", "cy@example.com"),
                ("role", "Warehouse Associate"),
            ],
        ),
    );
    agenda.push(newcomer.clone());
    queue.push_back(newcomer);
    drive(
        &mut core,
        &mut queue,
        at("2027-01-01T00:00:00Z"),
        &mut sends,
        &mut ids,
    );

    // The invite and the reminder are the same in both versions, so the
    // whole timeline of everyone is the new version's.
    let machine = machine(&core);
    assert_as_simulated(core.store(), &machine, &agenda, &ids, &sends);
    for who in ["ana", "ben", "cy"] {
        let templates: Vec<&str> = sends[&ids[who]].iter().map(|s| s.0.as_str()).collect();
        assert!(templates.contains(&"nudge"), "{who}: {templates:?}");
        assert!(!templates.contains(&"last-call"), "{who}: {templates:?}");
    }
    for who in ["ana", "ben"] {
        let migrated = core
            .store()
            .history(&ids[who])
            .unwrap()
            .into_iter()
            .any(|e| matches!(e.kind, LogKind::Migrated { .. }));
        assert!(migrated, "{who}: the move to the new version is logged");
    }
}

#[test]
fn a_damaged_dossier_is_an_error_naming_its_key() {
    let (_fx, mut core, mut queue, ids) = warehouse_first_day();
    let ana = ids["ana"].clone();
    let mut txn = SledTxn::new(core.store());
    txn.put_raw(raw::dossier(&ana), b"\xff\xfe garbage".to_vec());
    txn.commit().unwrap();

    let damaged = core.store().get_raw(&raw::dossier(&ana)).unwrap();

    // Ana's timer comes first; it is passed over, and Ben goes on to the end.
    let (mut sends, mut ids) = (Sends::new(), ids);
    drive(
        &mut core,
        &mut queue,
        at("2027-01-01T00:00:00Z"),
        &mut sends,
        &mut ids,
    );
    assert!(!sends.contains_key(&ana));
    assert!(!sends[&ids["ben"]].is_empty());
    assert_eq!(
        enrollment(core.store(), &ids["ben"])
            .engine
            .outcome
            .as_deref(),
        Some("expired")
    );
    assert_eq!(core.next_due().unwrap(), None);
    assert_eq!(
        core.store().get_raw(&raw::dossier(&ana)).unwrap(),
        damaged,
        "the damaged record is left as it was"
    );
    assert_eq!(core.store().timers_until(None).unwrap().len(), 1);

    let err = core.store().enrollment(&ana, WAREHOUSE).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&format!("damaged record `c{ana}`")), "{text}");

    let view = nudge::runtime::query::show(
        core.store(),
        core.campaigns(),
        &ana,
        &crate::support::settings().tracked_link,
    )
    .unwrap_err();
    assert!(view.to_string().contains("damaged record"), "{view}");
}

/// The warehouse fixture's core, driven through the first day of
/// [`two_in_reminder`]: the agenda left, and the candidates' ids by name.
type FirstDay = (
    Fixture,
    Core,
    VecDeque<(Instant, Act)>,
    HashMap<String, String>,
);

fn warehouse_first_day() -> FirstDay {
    let fx = Fixture::warehouse();
    let mut core = fx.core();
    let mut queue: VecDeque<_> = two_in_reminder().into();
    let (mut sends, mut ids) = (Sends::new(), HashMap::new());
    drive(
        &mut core,
        &mut queue,
        at("2026-11-27T12:00:00Z"),
        &mut sends,
        &mut ids,
    );
    (fx, core, queue, ids)
}

/// The dossiers a commit held with a send waiting are kept decoded for the
/// next transaction (`store::sled::recent`): what it reads must be what
/// sled holds, and a change that is never committed must not be read.
#[test]
fn a_dossier_read_from_memory_is_the_stored_one() {
    let (_fx, mut core, _, _) = warehouse_first_day();
    // A Monday morning in Chicago, in the campaign's window: the invite
    // is queued.
    let now = at("2026-11-30T16:00:00Z");
    let enroll = |core: &mut Core, who: &str| {
        let (replies, _) = core
            .execute(
                vec![enroll_as(Some(who), &format!("{who}@example.com"))],
                now,
            )
            .unwrap();
        match &replies[..] {
            [Reply::Enrolled(e)] => e.candidate.clone(),
            other => panic!("{other:?}"),
        }
    };
    // Queued for the dispatcher, not in flight: not kept.
    let queued = enroll(&mut core, "yan");
    let store = core.store();
    assert!(!store.dossier(&queued).unwrap().unwrap().outbox.is_empty());
    assert!(!store.keeps_decoded(&queued), "a queued send may wait long");

    // Put in flight by the enrolling commit: kept for the channel's answer.
    core.mark_in_flight_when_queued(Channel::ALL.to_vec());
    let id = enroll(&mut core, "zed");
    let other = enroll(&mut core, "xia");
    let store = core.store();
    let stored = store.dossier(&id).unwrap().expect("a dossier");
    assert!(!stored.outbox.is_empty(), "the invite waits");
    assert!(store.keeps_decoded(&id), "the enrolling commit left it");

    // Taken from memory, equal to what sled holds; a commit that puts
    // nothing in flight for it does not leave it again.
    let mut txn = SledTxn::new(store);
    assert_eq!(txn.dossier(&id).unwrap(), Some(&stored));
    assert!(!store.keeps_decoded(&id), "taken, not copied");
    txn.bump(WAREHOUSE, &nudge::store::Counter::Late, 0);
    txn.commit().unwrap();
    assert!(!store.keeps_decoded(&id));
    assert_eq!(SledTxn::new(store).dossier(&id).unwrap(), Some(&stored));

    // Changed, never committed: gone from memory, read from sled.
    let stored = store.dossier(&other).unwrap().expect("a dossier");
    assert!(store.keeps_decoded(&other));
    let mut txn = SledTxn::new(store);
    txn.log(
        &other,
        nudge::store::LogEntry {
            at: now,
            campaign: WAREHOUSE.into(),
            kind: LogKind::Received {
                event: "clicked".into(),
                fields: Default::default(),
            },
        },
    )
    .unwrap();
    drop(txn);
    assert!(!store.keeps_decoded(&other));
    let mut txn = SledTxn::new(store);
    assert_eq!(txn.dossier(&other).unwrap(), Some(&stored));
    drop(txn);

    // A dossier record written by hand: nothing kept is trusted after it.
    let third = enroll(&mut core, "wu");
    let store = core.store();
    assert!(store.keeps_decoded(&third));
    let mut txn = SledTxn::new(store);
    txn.put_raw(raw::dossier(&third), b"\xff\xfe garbage".to_vec());
    txn.commit().unwrap();
    assert!(!store.keeps_decoded(&third));
    let err = SledTxn::new(store).dossier(&third).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn the_store_refuses_a_newer_layout_and_a_folder_of_other_files() {
    let fx = Fixture::new();
    let store = SledStore::open(&fx.store_dir(), 1 << 20).unwrap();
    let mut txn = SledTxn::new(&store);
    txn.put_raw(raw::meta("schema"), 99u32.to_be_bytes().to_vec());
    txn.commit().unwrap();
    drop(store);
    match SledStore::open(&fx.store_dir(), 1 << 20) {
        Err(StoreError::NewerSchema { found: 99, .. }) => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a newer layout was opened"),
    }

    // A newer nudge also writes its layout into the marker file beside
    // sled's files, which is read before sled opens (and rewrites) anything.
    let newer = fx.path().join("newer");
    drop(SledStore::open(&newer, 1 << 20).unwrap());
    let marker = newer.join(nudge::store::LAYOUT_FILE);
    let current = format!("{}\n", nudge::store::SCHEMA_VERSION);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), current);
    let next = nudge::store::SCHEMA_VERSION + 1;
    std::fs::write(&marker, format!("{next}\n")).unwrap();
    let files = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let bytes = std::fs::read(&path).unwrap_or_default();
                (path, bytes)
            })
            .collect();
        names.sort();
        names
    };
    let before = files(&newer);
    match SledStore::open(&newer, 1 << 20) {
        Err(StoreError::NewerSchema { found, .. }) if found == next => {}
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a newer layout was opened"),
    }
    assert!(before == files(&newer), "the refused store was written to");
    // An older layout (version 1 kept enrollments under keys of their own)
    // is refused the same way: this build does not convert it.
    std::fs::write(&marker, "1\n").unwrap();
    let before = files(&newer);
    match SledStore::open(&newer, 1 << 20) {
        Err(e @ StoreError::OlderSchema { found: 1, .. }) => {
            assert!(e.to_string().contains("older nudge"), "{e}")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an older layout was opened"),
    }
    assert!(before == files(&newer), "the refused store was written to");
    std::fs::write(&marker, "two").unwrap();
    let err = SledStore::open(&newer, 1 << 20).err().expect("refused");
    assert!(err.to_string().contains("layout marker"), "{err}");

    // A store from before the marker file gets one.
    std::fs::remove_file(&marker).unwrap();
    drop(SledStore::open(&newer, 1 << 20).unwrap());
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), current);

    let other = fx.path().join("notes");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("todo.txt"), "call Ana").unwrap();
    let err = SledStore::open(&other, 1 << 20).err().expect("refused");
    assert!(
        err.to_string().contains("not a nudge store") && err.to_string().contains("untouched"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

/// Enrollment `i` of [`batched_like_one_at_a_time`]: phones for all, email
/// for half, four time zones.
fn numbered(i: usize) -> Command {
    let zones = [
        "America/Chicago",
        "America/New_York",
        "Europe/Madrid",
        "America/Los_Angeles",
    ];
    let mut fields: BTreeMap<String, String> = [
        ("name", format!("Applicant {i}")),
        ("phone", format!("+1555{i:07}")),
        ("role", "Warehouse Associate".to_string()),
        ("timezone", zones[i % zones.len()].to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if i.is_multiple_of(2) {
        fields.insert("email".into(), format!("a{i}@example.com"));
    }
    Command::Enroll(nudge::runtime::api::EnrollRequest {
        ignore_filter: true,
        campaign: WAREHOUSE.into(),
        external_id: Some(format!("applicant-{i}")),
        fields,
    })
}

/// What a reply says, without the link (its token is random).
fn gist(reply: &Reply) -> String {
    match reply {
        Reply::Enrolled(r) => format!(
            "{} enrolled={} {} {:?} {:?} {}",
            r.candidate, r.enrolled, r.at, r.state, r.variants, r.filter_matched
        ),
        Reply::Event(r) => format!("{r:?}"),
        other => format!("{other:?}"),
    }
}

/// A batch large enough to run its enrollments' first steps and its due
/// timers on two threads ends where the same commands and timers taken one
/// at a time end: the same replies, sends and histories.
#[test]
fn batched_like_one_at_a_time() {
    const N: usize = 300;
    let t0 = at("2026-11-26T15:00:00Z");
    let until = t0 + Duration::days(4);
    let click = |who: String| {
        Command::Event(EventRequest {
            candidate: who,
            event: "clicked".into(),
            ..EventRequest::default()
        })
    };
    // An event between two runs of enrollments, and one applicant twice in
    // the second run.
    let enrollments = || {
        let mut commands: Vec<Command> = (0..N / 2).map(numbered).collect();
        commands.push(click("c3".into()));
        commands.extend((N / 2..N).map(numbered));
        commands.insert(N - 10, numbered(N / 2 + 5));
        commands
    };

    #[derive(PartialEq)]
    enum Mode {
        OneAtATime,
        Together,
        /// Runs of enrollments in batches of 135 written behind (the
        /// applicant enrolled twice is in two consecutive batches, the
        /// second run while the first is written), runs of other commands
        /// in a batch each.
        Behind,
    }
    let run = |mode: Mode| {
        let together = mode != Mode::OneAtATime;
        let fx = Fixture::warehouse();
        let mut core = fx.core();
        // A slow disk: each batch written behind is still unwritten while
        // the next is run.
        core.store().hold_writes(StdDuration::from_millis(20));
        let mut replies = Vec::new();
        let mut sends = Vec::new();
        // The commands in one batch (with the timers due at `now`, up to
        // `limit`), or a batch each; returns the timers fired with them.
        let mut batch = |core: &mut Core, commands: Vec<Command>, now, limit| {
            if mode == Mode::Behind {
                let mut landed = Vec::new();
                let mut fired = 0;
                let mut commands = commands.into_iter().peekable();
                while let Some(first) = commands.next() {
                    let enroll = |c: &Command| matches!(c, Command::Enroll(_));
                    let kind = enroll(&first);
                    let mut chunk = vec![first];
                    while chunk.len() < 135 {
                        match commands.next_if(|c| enroll(c) == kind) {
                            Some(c) => chunk.push(c),
                            None => break,
                        }
                    }
                    let handoff = core.tick_behind(chunk, now, limit);
                    landed.extend(handoff.landed);
                    match handoff.this {
                        This::Behind { fired: n } => fired += n,
                        This::Written {
                            landed: l,
                            fired: n,
                        } => {
                            fired += n;
                            landed.push(Ok(l));
                        }
                        This::Failed(e) => panic!("{e}"),
                    }
                }
                landed.extend(core.land());
                for l in landed {
                    let l = l.unwrap();
                    replies.extend(l.replies);
                    sends.extend(l.out);
                }
                return fired;
            }
            if !together {
                for c in commands {
                    let (r, out) = core.execute(vec![c], now).unwrap();
                    replies.extend(r);
                    sends.extend(out);
                }
                return 0;
            }
            let (r, fired, out) = if limit == 0 {
                let (r, out) = core.execute(commands, now).unwrap();
                (r, 0, out)
            } else {
                core.tick(commands, now, limit).unwrap()
            };
            replies.extend(r);
            sends.extend(out);
            fired
        };
        let limit = if together { 1024 } else { 1 };
        batch(&mut core, enrollments(), t0, 0);
        // At the first due instant, events for candidates whose timers are
        // due too, in the same batch as those timers.
        let t1 = core.next_due().unwrap().expect("timers armed");
        let clicks = (5..=60).map(|i| click(format!("c{i}"))).collect();
        let fired = batch(&mut core, clicks, t1, limit);
        assert!(
            !together || fired >= 64,
            "only {fired} timers due with the events"
        );
        // What is left due (one at a time: all of it, from `t1` on).
        let mut most = 0;
        while let Some(t) = core.next_due().unwrap().filter(|t| *t <= until) {
            let (fired, out) = core.fire_due(t, limit).unwrap();
            assert!(fired > 0, "the timers due at {t} do not fire");
            most = most.max(fired);
            sends.extend(out);
        }
        let store = core.store();
        let histories: Vec<_> = (1..=N)
            .map(|i| store.history(&format!("c{i}")).unwrap())
            .collect();
        let mut sends: Vec<String> = sends
            .into_iter()
            .map(|m| format!("{} {} {} {}", m.key, m.template, m.channel, m.scheduled_at))
            .collect();
        sends.sort();
        let replies: Vec<String> = replies.iter().map(gist).collect();
        (replies, sends, histories, most)
    };
    let (replies, sends, histories, most) = run(Mode::Together);
    let (one_replies, one_sends, one_histories, _) = run(Mode::OneAtATime);
    let (behind_replies, behind_sends, behind_histories, _) = run(Mode::Behind);
    assert_eq!(behind_replies, one_replies, "written behind");
    assert_eq!(behind_sends, one_sends, "written behind");
    assert!(
        behind_histories == one_histories,
        "written behind: the histories differ"
    );
    assert!(most >= 128, "a batch fired only {most} timers at once");
    assert_eq!(replies.len(), N + 2 + 56);
    assert!(
        replies[N - 10].contains("enrolled=false"),
        "the applicant enrolled twice in one run: {}",
        replies[N - 10]
    );
    assert_eq!(replies, one_replies);
    assert!(sends.len() > 2 * N, "{} sends", sends.len());
    assert_eq!(sends, one_sends);
    for (i, (a, b)) in histories.iter().zip(&one_histories).enumerate() {
        assert_eq!(a, b, "the history of c{}", i + 1);
    }
}

/// New candidates are created without looking for a stored dossier under
/// their new id: the ids must only grow, even when the id counter is lost.
#[test]
fn new_ids_stay_above_the_stored_ones_when_the_counter_is_lost() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    {
        let mut core = fx.core();
        let (replies, _) = core.execute((0..3).map(numbered).collect(), now).unwrap();
        assert_eq!(replies.len(), 3);
        let store = core.store().clone();
        let mut txn = SledTxn::new(&store);
        txn.remove(raw::meta("next_candidate"));
        txn.commit().unwrap();
    }
    let mut core = fx.core();
    let (replies, _) = core.execute(vec![numbered(3)], now).unwrap();
    let [Reply::Enrolled(fourth)] = &replies[..] else {
        panic!("{replies:?}");
    };
    assert_eq!(fourth.candidate, "c4");
    for (i, id) in ["c1", "c2", "c3"].iter().enumerate() {
        let c = candidate(core.store(), id);
        assert_eq!(c.fields["name"], format!("Applicant {i}"), "{id} kept");
    }
}

/// An enrollment by external id, or by email when `id` is `None`.
fn enroll_as(id: Option<&str>, email: &str) -> Command {
    Command::Enroll(nudge::runtime::api::EnrollRequest {
        ignore_filter: true,
        campaign: WAREHOUSE.into(),
        external_id: id.map(str::to_string),
        fields: [
            ("name".to_string(), "Someone".to_string()),
            ("email".to_string(), email.to_string()),
        ]
        .into(),
    })
}

/// Enrolls (by external id, or by email when `id` is `None`) and checks
/// which candidate it was and whether it was new to the campaign.
fn enrolls(core: &mut Core, id: Option<&str>, email: &str, now: Instant, want: &str, new: bool) {
    let (replies, _) = core.execute(vec![enroll_as(id, email)], now).unwrap();
    match &replies[..] {
        [Reply::Enrolled(e)] => assert_eq!(
            (e.candidate.as_str(), e.enrolled),
            (want, new),
            "{id:?} {email}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn identities_survive_a_reopen_and_a_layout_2_index_is_still_read() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    {
        let mut core = fx.core();
        enrolls(&mut core, Some("ana-1"), "ana@example.com", now, "c1", true);
        enrolls(&mut core, None, "Bea@Example.com", now, "c2", true);
        enrolls(&mut core, Some("cy-1"), "cy@example.com", now, "c3", true);
    }
    // Reopened: found again by external id and by email (any case), and by
    // `nudge show`'s lookup.
    {
        let mut core = fx.core();
        core.store().preload_identities();
        enrolls(
            &mut core,
            Some("ana-1"),
            "new@example.com",
            now,
            "c1",
            false,
        );
        enrolls(&mut core, None, "bea@example.COM", now, "c2", false);
        assert_eq!(
            candidate(core.store(), "c1").fields["email"],
            "new@example.com"
        );
        let store = core.store().clone();
        let mut txn = SledTxn::new(&store);
        let found = core.find_candidate(&mut txn, "BEA@example.com").unwrap();
        assert_eq!(found.map(|c| c.id).as_deref(), Some("c2"));
        assert!(core
            .find_candidate(&mut txn, "nobody@example.com")
            .unwrap()
            .is_none());

        // Make it a layout-2 store: identities under an `x` key each.
        let records: Vec<_> = store.scan_raw(b"y").map(|r| r.unwrap().0).collect();
        // One per commit that gave someone a new identity: three
        // enrollments, and c1's new address.
        assert_eq!(records.len(), 4, "one identity record per commit");
        let mut txn = SledTxn::new(&store);
        for k in records {
            txn.remove(k.to_vec());
        }
        for (identity, id) in [
            ("ana-1", "c1"),
            ("email:bea@example.com", "c2"),
            ("cy-1", "c3"),
        ] {
            let mut k = vec![b'x'];
            k.extend_from_slice(identity.as_bytes());
            txn.put_raw(k, id.as_bytes().to_vec());
        }
        txn.put_raw(raw::meta("schema"), 2u32.to_be_bytes().to_vec());
        txn.commit().unwrap();
    }
    let marker = fx.store_dir().join(nudge::store::LAYOUT_FILE);
    std::fs::write(&marker, "2\n").unwrap();
    let mut core = fx.core();
    let current = format!("{}\n", nudge::store::SCHEMA_VERSION);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        current,
        "marked 3"
    );
    enrolls(&mut core, Some("cy-1"), "cy@example.com", now, "c3", false);
    enrolls(&mut core, None, "bea@example.com", now, "c2", false);
    enrolls(&mut core, None, "dee@example.com", now, "c4", true);
}

/// The last guard behind the start-up check: a core given campaign files
/// that strand candidates (nothing in the library stops a caller from
/// building one) leaves them where they are when their timers fire, never
/// indexing the new machine's states with the stored index.
#[test]
fn a_core_on_files_that_strand_candidates_leaves_them_where_they_are() {
    let fx = Fixture::warehouse();
    let mut core = fx.core();
    let mut queue: VecDeque<_> = two_in_reminder().into();
    let (mut sends, mut ids) = (Sends::new(), HashMap::new());
    drive(&mut core, &mut queue, at(RELOAD_AT), &mut sends, &mut ids);
    let before: Vec<Enrollment> = ids
        .values()
        .map(|id| enrollment(core.store(), id))
        .collect();
    drop(core);

    fx.write_campaign("warehouse.nudge", &without_reminder());
    let store = SledStore::open(&fx.store_dir(), 8 << 20).unwrap();
    let stranded = nudge::runtime::core::stranded(&store, &fx.load()).unwrap();
    assert_eq!(stranded.len(), 1, "{stranded:?}");
    assert_eq!(
        stranded[0].to_string(),
        "campaign `warehouse_associate`: state `reminder` is removed but 2 candidates wait in it"
    );
    let templates = Templates::load(&fx.templates_dir()).unwrap();
    let mut core = Core::new(
        store,
        fx.load(),
        Some(Arc::new(templates)),
        crate::support::settings(),
    );
    let (_, out) = core.fire_due(at("2027-01-01T00:00:00Z"), 1024).unwrap();
    assert!(out.is_empty(), "nothing is sent from a state that is gone");
    let after: Vec<Enrollment> = ids
        .values()
        .map(|id| enrollment(core.store(), id))
        .collect();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.state_name, "reminder");
        assert_eq!(
            a.version, b.version,
            "not moved onto the version without its state"
        );
        assert_eq!(a.engine.state, b.engine.state);
    }
}

/// The last failure of a send that may be retried says that it was given
/// up, not that it will be tried again.
fn the_last_failure_of_a_send_does_not_promise_a_retry<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let store = S::of(&fx);
    let templates = Templates::load(&fx.templates_dir()).unwrap();
    let mut settings = crate::support::settings();
    settings.backoff.max_attempts = 1;
    let mut core = Core::new(store, fx.load(), Some(Arc::new(templates)), settings);
    let now = at("2026-11-26T15:00:00Z");
    let bo = texter("bo-4", "Bo", "+15550100");
    let (replies, out) = core.execute(vec![bo.command(WAREHOUSE)], now).unwrap();
    let [Reply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    let key = out[0].key.clone();
    core.execute(vec![Command::MarkInFlight(vec![key.clone()])], now)
        .unwrap();
    let answer = Command::Delivered {
        key: key.clone(),
        outcome: Err(SendError::Retryable("connection reset".into())),
    };
    core.execute(vec![answer], now).unwrap();
    let entry: OutboxEntry = core
        .store()
        .send(SendKey::parse(&key).unwrap())
        .unwrap()
        .unwrap();
    let SendStatus::Failed(why) = &entry.status else {
        panic!("{entry:?}");
    };
    assert_eq!(why, "connection reset; given up after 1 attempt");
    let history = core.store().history(&enrolled.candidate).unwrap();
    let last = history.last().unwrap();
    let (kind, text) = nudge::explain::describe(last, chrono_tz::UTC);
    assert_eq!(kind, "failed");
    assert_eq!(text, "sms: connection reset; given up after 1 attempt");
}

fn a_paused_campaign_parks_what_falls_due_and_resuming_runs_it<S: StoreFor>() {
    let fx = Fixture::warehouse();
    let mut core = fx.core_on::<S>();
    let now = at("2026-11-26T15:00:00Z");
    let (replies, _) = core.execute(vec![numbered(0)], now).unwrap();
    let [Reply::Enrolled(enrolled)] = &replies[..] else {
        panic!("{replies:?}");
    };
    let id = enrolled.candidate.clone();
    let pause = |paused| Command::SetPaused {
        campaign: WAREHOUSE.into(),
        paused,
    };
    let (replies, _) = core.execute(vec![pause(true)], now).unwrap();
    assert!(matches!(replies[..], [Reply::Done]), "{replies:?}");

    let due = core.next_due().unwrap().expect("a timer is armed");
    let (_, out) = core.fire_due(due, 1024).unwrap();
    assert_eq!(out, vec![], "a paused campaign sends nothing");
    let parked = enrollment(core.store(), &id);
    assert!(parked.parked && parked.timer.is_none(), "{parked:?}");
    assert_eq!(core.next_due().unwrap(), None);

    let later = due + Duration::hours(1);
    let (_, out) = core.execute(vec![pause(false)], later).unwrap();
    let resumed = enrollment(core.store(), &id);
    assert!(!resumed.parked, "{resumed:?}");
    assert!(
        !out.is_empty() || resumed.timer.is_some(),
        "what fell due runs, or waits for its time again: {resumed:?}"
    );
}

on_both_stores!(
    a_week_of_the_warehouse_campaign_runs_as_the_simulator_predicts,
    enrolling_the_same_external_id_twice_is_one_candidate,
    an_event_from_the_future_is_refused_and_a_repeated_event_counts_once,
    a_send_queued_before_an_opt_out_never_reaches_the_channel,
    sends_to_a_premarked_channel_are_in_flight_from_the_commit_that_queues_them,
    a_backlog_past_the_premarked_bound_waits_as_queued,
    a_reload_that_removes_a_state_with_waiting_candidates_is_refused,
    a_valid_reload_keeps_every_timer_and_new_candidates_get_the_new_version,
    the_last_failure_of_a_send_does_not_promise_a_retry,
    a_paused_campaign_parks_what_falls_due_and_resuming_runs_it,
);

/// Limits beyond the configuration's bounds that reach the daemon by
/// another path than `nudge.toml` (here a library caller's [`Options`])
/// are brought inside them: the lanes' semaphore (which panics above its
/// maximum of permits) and the core's batch take them, and a send goes
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_beyond_their_bounds_do_not_panic_the_daemon() {
    let fx = Fixture::new();
    fx.write_campaign(
        "probe.nudge",
        "campaign probe {\n  title \"Probe\"\n  channels email\n  goal completed\n  deadline 72h\n\n  \
         state first {\n    send \"invite-short\"\n    end\n  }\n}\n",
    );
    let out = fx.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let file = |name: &str| Backend::File(FileChannel::open(out.join(name)).unwrap());
    let channels = Channels::new(
        file("email.jsonl"),
        file("sms.jsonl"),
        file("whatsapp.jsonl"),
        file("webhook.jsonl"),
    );
    let clock = Arc::new(ManualClock::new(at("2026-11-23T15:00:00Z")));
    let running = daemon::start(Options {
        core: fx.core(),
        channels: Arc::new(channels),
        clock,
        concurrency: usize::MAX,
        rates: Vec::new(),
        batch: usize::MAX,
        sources: fx.sources(),
    })
    .unwrap();
    let request = nudge::runtime::api::EnrollRequest {
        ignore_filter: true,
        campaign: "probe".into(),
        external_id: Some("c1".into()),
        fields: [
            ("name".to_string(), "Ana Diaz".to_string()),
            ("email".to_string(), "ana@example.com".to_string()),
        ]
        .into(),
    };
    running.handle.enroll(request).await.unwrap();
    let sent = wait_for(StdDuration::from_secs(10), || {
        let sent = read_messages(out.join("email.jsonl")).unwrap();
        (!sent.is_empty()).then_some(sent)
    })
    .expect("the invite was never delivered");
    assert_eq!(sent[0].template, "invite-short");
    running.stop().await;
}

#[test]
fn a_layout_5_store_is_marked_as_this_builds_with_its_counters_as_they_were() {
    let fx = Fixture::warehouse();
    let now = at("2026-11-26T15:00:00Z");
    {
        let mut core = fx.core();
        core.execute(vec![numbered(0), numbered(1)], now).unwrap();
    }
    let counters = |store: &SledStore| {
        let mut all = store.counters(WAREHOUSE).unwrap();
        all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        all
    };
    let before = {
        let store = SledStore::open(&fx.store_dir(), 1 << 20).unwrap();
        let before = counters(&store);
        let mut txn = SledTxn::new(&store);
        txn.put_raw(raw::meta("schema"), 5u32.to_be_bytes().to_vec());
        txn.commit().unwrap();
        before
    };
    std::fs::write(fx.store_dir().join(nudge::store::LAYOUT_FILE), "5\n").unwrap();
    assert!(!before.is_empty());
    let store = SledStore::open(&fx.store_dir(), 1 << 20).unwrap();
    assert_eq!(
        counters(&store),
        before,
        "counters made again from the enrollments"
    );
    drop(store);
    assert_eq!(
        std::fs::read_to_string(fx.store_dir().join(nudge::store::LAYOUT_FILE)).unwrap(),
        format!("{}\n", nudge::store::SCHEMA_VERSION)
    );
}
