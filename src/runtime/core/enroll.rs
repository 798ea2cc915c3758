//! Enrollment and identity: new candidates and their tokens, the same
//! person found by id, email or phone, and the campaign's `where` filter.

use super::apply::{log, variant_names, Step};
use super::batch::{helper_share, PARALLEL_STEPS};
use super::reload::park;
use super::*;
use crate::runtime::fields;
use crate::store::{email_identity, phone_identity};

/// A field a campaign's template prints with no default, on the channel
/// the file is sent on.
pub(super) struct Need {
    field: String,
    template: String,
    channel: Channel,
}

/// [`Need`]s by campaign, then by the candidate's language as written
/// (lowercased; empty for none).
pub(super) type Needs = HashMap<String, HashMap<String, Arc<Vec<Need>>>>;

/// An enrollment admitted by [`Core::admit`].
pub(super) enum Admit {
    /// Answered already (enrolled before, refused).
    Done(Reply),
    /// New: its first step is to be taken.
    Start(Start),
}

/// A new enrollment whose first step is to be taken.
pub(super) struct Start {
    /// Its place in the run of enrollments.
    pub(super) at: usize,
    pub(super) campaign: Arc<Campaign>,
    pub(super) candidate: CandidateRecord,
    pub(super) filter_matched: bool,
}

/// Who a request's person is (if known), and their fields as they would be.
type Preview = (Option<String>, BTreeMap<String, String>);

/// A request's fields as a candidate keeps them ([`Core::clean_fields`]),
/// or why they are refused.
pub(super) type Cleaned = Result<BTreeMap<String, String>, Refusal>;

/// Who a request's person is (if known) and their fields with the
/// request's (`given`, cleaned) written over them, as the filter would
/// see them after the request; nothing is written.
fn preview<T: Transaction>(
    txn: &mut T,
    external_id: Option<&str>,
    given: BTreeMap<String, String>,
) -> Result<Preview, StoreError> {
    let external = external_id.map(str::trim).filter(|s| !s.is_empty());
    let contacts = contact_identities(&given);
    Ok(match find_person(txn, external, &contacts)? {
        Some((existing, _)) => {
            let mut merged = existing.fields;
            merged.extend(given);
            (Some(existing.id), merged)
        }
        None => (None, given),
    })
}

/// Compares two tokens in time that does not depend on where they differ.
pub(super) fn same_token(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl<S: Store> Core<S> {
    /// Enrollments, in order: who each candidate is and whether they are
    /// enrolled already is settled one after another; the first steps of
    /// the new enrollments then run on two threads when there are many
    /// (a candidate's on one of them). The same candidate enrolled twice
    /// in one campaign within the run sees the first enrollment.
    pub(super) fn enroll_all(
        &self,
        txn: &mut Txn<S>,
        reqs: &[EnrollRequest],
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<Reply>, StoreError> {
        let mut replies: Vec<Option<Reply>> = Vec::with_capacity(reqs.len());
        let mut starts: Vec<Start> = Vec::new();
        // Candidates whose dossier this transaction had read before the run
        // stay on this thread; the others may go to the helper.
        let mut pinned: HashSet<String> = HashSet::new();
        let mut seen: HashSet<String> = HashSet::new();
        // (candidate, campaign) of the enrollments in `starts`.
        let mut starting: HashSet<(String, String)> = HashSet::new();
        for (at, (req, clean)) in reqs.iter().zip(self.clean_all(reqs)).enumerate() {
            let mut admitted = self.admit(txn, req, clean, now, &mut pinned, &mut seen)?;
            if let Admit::Start(start) = &admitted {
                let pair = (
                    start.candidate.id.clone(),
                    start.campaign.machine.name.clone(),
                );
                if !starting.insert(pair) {
                    starting.clear();
                    // Enrolled earlier in this run: its first step is taken
                    // now, so this one finds it.
                    for (i, reply) in
                        self.start_all(txn, std::mem::take(&mut starts), &pinned, now, out)?
                    {
                        replies[i] = Some(reply);
                    }
                    let clean = self.clean_fields(req.external_id.as_deref(), &req.fields);
                    admitted = self.admit(txn, req, clean, now, &mut pinned, &mut seen)?;
                    if let Admit::Start(start) = &admitted {
                        starting.insert((
                            start.candidate.id.clone(),
                            start.campaign.machine.name.clone(),
                        ));
                    }
                }
            }
            match admitted {
                Admit::Done(reply) => replies.push(Some(reply)),
                Admit::Start(mut start) => {
                    start.at = at;
                    starts.push(start);
                    replies.push(None);
                }
            }
        }
        for (i, reply) in self.start_all(txn, starts, &pinned, now, out)? {
            replies[i] = Some(reply);
        }
        Ok(replies
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Reply::Error(Refusal::Internal("an enrollment was lost".into()))
                })
            })
            .collect())
    }

    /// The first steps of new enrollments, on two threads when there are
    /// many; a reply for each, by its place in the run.
    pub(super) fn start_all(
        &self,
        txn: &mut Txn<S>,
        starts: Vec<Start>,
        pinned: &HashSet<String>,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Vec<(usize, Reply)>, StoreError> {
        let each = |txn: &mut Txn<S>, starts: Vec<Start>, out: &mut Outgoing| {
            let mut replies = Vec::with_capacity(starts.len());
            for s in starts {
                let enr = self.start_enrollment(txn, &s.campaign, &s.candidate, now, out)?;
                let suppressed = self.suppressed_contacts(txn, &s.candidate)?;
                replies.push((
                    s.at,
                    Reply::Enrolled(EnrollResponse {
                        campaign: s.campaign.machine.name.clone(),
                        candidate: s.candidate.id.clone(),
                        link: self.link(&s.candidate),
                        enrolled: true,
                        at: exact_instant(now),
                        state: enr.state_name.clone(),
                        variants: enr.variants.clone(),
                        filter_matched: s.filter_matched,
                        suppressed,
                    }),
                ));
            }
            Ok::<_, StoreError>(replies)
        };
        let ids = starts.iter().map(|s| s.candidate.id.as_str());
        let Some(theirs) = helper_share(ids, |id| !pinned.contains(id)) else {
            return each(txn, starts, out);
        };
        let halves: (Vec<Start>, Vec<Start>) = starts
            .into_iter()
            .partition(|s| !theirs.contains(&s.candidate.id));
        let (mut replies, their_replies) =
            self.on_two_threads(txn, theirs.iter().map(String::as_str), halves, out, each)?;
        replies.extend(their_replies);
        Ok(replies)
    }

    /// Who an enrollment's candidate is (created or updated), and whether
    /// it is to start: the part of an enrollment taken one at a time.
    pub(super) fn admit(
        &self,
        txn: &mut Txn<S>,
        req: &EnrollRequest,
        clean: Cleaned,
        now: Instant,
        pinned: &mut HashSet<String>,
        seen: &mut HashSet<String>,
    ) -> Result<Admit, StoreError> {
        let Some(campaign) = self.campaigns.get(&req.campaign).cloned() else {
            return Ok(Admit::Done(Reply::Error(Refusal::unknown_campaign(
                &req.campaign,
                &self.campaigns,
            ))));
        };
        let clean = match clean {
            Ok(clean) => clean,
            Err(refusal) => return Ok(Admit::Done(Reply::Error(refusal))),
        };
        // An explicit enrollment obeys the campaign's `where` filter unless
        // told to ignore it; judged before anything is written, on the
        // person's fields with the request's over them.
        if !req.ignore_filter && campaign.machine.has_filter() {
            let (existing, merged) = preview(txn, req.external_id.as_deref(), clean.clone())?;
            let enrolled = match &existing {
                Some(id) => txn.enrollment(id, &campaign.machine.name)?.is_some(),
                None => false,
            };
            let probe = Candidate {
                id: existing.unwrap_or_default(),
                fields: merged,
            };
            if !enrolled && !campaign.machine.accepts(&probe) {
                return Ok(Admit::Done(Reply::Error(Refusal::FilterDoesNotTake {
                    campaign: campaign.machine.name.clone(),
                })));
            }
        }
        // A dossier this transaction had read already is not read again.
        let read = txn.candidates_held();
        let candidate = match self.upsert_candidate(
            txn,
            Some(&campaign),
            req.external_id.as_deref(),
            clean,
            now,
        )? {
            Ok(c) => c,
            Err(e) => return Ok(Admit::Done(Reply::Error(e))),
        };
        if seen.insert(candidate.id.clone()) && txn.candidates_held() == read {
            pinned.insert(candidate.id.clone());
        }
        let existing = txn.enrollment(&candidate.id, &campaign.machine.name)?;
        if candidate.opted_out && existing.is_none() {
            return Ok(Admit::Done(Reply::Error(Refusal::OptedOut {
                candidate: candidate.id.clone(),
            })));
        }
        if let Some(existing) = existing {
            return Ok(Admit::Done(Reply::Enrolled(EnrollResponse {
                campaign: campaign.machine.name.clone(),
                candidate: candidate.id.clone(),
                link: self.link(&candidate),
                enrolled: false,
                at: exact_instant(existing.engine.enrolled_at),
                state: existing.state_name.clone(),
                variants: existing.variants.clone(),
                filter_matched: true,
                suppressed: self.suppressed_contacts(txn, &candidate)?,
            })));
        }
        // Without a filter the candidate's fields are not copied to judge.
        let filter_matched = !campaign.machine.has_filter()
            || campaign.machine.accepts(&engine_candidate(&candidate));
        Ok(Admit::Start(Start {
            at: 0,
            campaign,
            candidate,
            filter_matched,
        }))
    }

    pub(super) fn start_enrollment(
        &self,
        txn: &mut Txn<S>,
        campaign: &Arc<Campaign>,
        candidate: &CandidateRecord,
        now: Instant,
        out: &mut Outgoing,
    ) -> Result<Enrollment, StoreError> {
        let machine = &campaign.machine;
        let engine_candidate = engine_candidate(candidate);
        let variants = self.decided_variants(txn, machine, &candidate.id)?;
        let variant_names = variant_names(machine, &variants);
        let zone = engine_candidate.zone(&machine.zone);
        let ctx = Ctx {
            candidate: &engine_candidate,
            zone,
            other_sends: &[],
            leaving: self.leaving(now),
        };
        let first = engine::enroll(machine, &ctx, variants, now);
        let enr = Enrollment {
            campaign: machine.name.clone(),
            candidate: candidate.id.clone(),
            version: campaign.version.clone(),
            state_name: machine.states[0].name.clone(),
            variants: variant_names.clone(),
            engine: first.state.clone(),
            timer: None,
            parked: false,
        };
        txn.bump(&machine.name, &Counter::State(enr.state_name.clone()), 1);
        log(
            txn,
            &candidate.id,
            LogEntry {
                at: now,
                campaign: machine.name.clone(),
                kind: LogKind::Enrolled {
                    state: enr.state_name.clone(),
                    variants: variant_names,
                    version: campaign.version.clone(),
                },
            },
        )?;
        // Records of `enroll` beyond `Enrolled` (a split, a final state).
        let records: Vec<_> = first
            .records
            .into_iter()
            .filter(|r| !matches!(r.what, Happening::Enrolled { .. }))
            .collect();
        let mut enr =
            self.apply_records(txn, enr, machine, &engine_candidate, zone, records, out)?;
        if self.is_paused(txn, &machine.name)? {
            park(txn, &mut enr);
            put_enrollment(txn, &enr)?;
            return Ok(enr);
        }
        self.step(txn, enr, Step::Wake, now, out)
    }

    /// [`Core::clean_fields`] for each request, on two threads when there
    /// are many: a check of the request alone, taken off the part of a run
    /// of enrollments that goes one at a time.
    fn clean_all(&self, reqs: &[EnrollRequest]) -> Vec<Cleaned> {
        let clean = |part: &[EnrollRequest]| -> Vec<Cleaned> {
            part.iter()
                .map(|r| self.clean_fields(r.external_id.as_deref(), &r.fields))
                .collect()
        };
        if reqs.len() < PARALLEL_STEPS {
            return clean(reqs);
        }
        let (mine, theirs) = reqs.split_at(reqs.len() / 2);
        let (mut out, theirs) = rayon::join(|| clean(mine), || clean(theirs));
        out.extend(theirs);
        out
    }

    /// The candidate an enrollment in `campaign` names, created or with
    /// its fields updated; refused, with nothing written, when a field does
    /// not check (`runtime::fields`) or when the candidate, fields updated,
    /// lacks one that a template of the campaign prints with no default.
    pub(super) fn upsert_candidate(
        &self,
        txn: &mut Txn<S>,
        campaign: Option<&Campaign>,
        external_id: Option<&str>,
        clean: BTreeMap<String, String>,
        now: Instant,
    ) -> Result<Result<CandidateRecord, Refusal>, StoreError> {
        Ok(self
            .upsert(txn, campaign, external_id, clean, now)?
            .map(|(c, _)| c))
    }

    /// A request's fields as a candidate keeps them (names trimmed and
    /// lower case, empty values dropped, the phone in E.164), or the
    /// refusal of the first that does not check (`runtime::fields`).
    pub(super) fn clean_fields(
        &self,
        external_id: Option<&str>,
        fields: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, Refusal> {
        let mut clean = BTreeMap::new();
        for (k, v) in fields {
            let (k, v) = (k.trim().to_lowercase(), v.trim());
            if k.is_empty() {
                return Err(Refusal::UnnamedField);
            }
            let checked = fields::check_name(&k).and_then(|()| fields::check(&k, v));
            if let Err(problem) = checked {
                return Err(Refusal::BadField {
                    field: k,
                    value: v.to_string(),
                    problem,
                });
            }
            if !v.is_empty() {
                clean.insert(k, v.to_string());
            }
        }
        // Channels send to E.164 numbers only; a number that cannot be put
        // in that form is refused now, not at the first SMS.
        if let Some(phone) = clean.get("phone") {
            match to_e164(phone, &self.settings.phone_country_code) {
                Ok(e164) => {
                    clean.insert("phone".to_string(), e164);
                }
                Err(e) => {
                    let who = external_id
                        .map(str::trim)
                        .filter(|id| !id.is_empty())
                        .or_else(|| clean.get("email").map(String::as_str))
                        .or_else(|| clean.get("name").map(String::as_str))
                        .unwrap_or("without id or email");
                    return Err(Refusal::BadPhone {
                        who: who.to_string(),
                        why: e.to_string(),
                    });
                }
            }
        }
        Ok(clean)
    }

    /// [`Core::upsert_candidate`], saying whether the candidate is new.
    pub(super) fn upsert(
        &self,
        txn: &mut Txn<S>,
        campaign: Option<&Campaign>,
        external_id: Option<&str>,
        clean: BTreeMap<String, String>,
        now: Instant,
    ) -> Result<Result<(CandidateRecord, bool), Refusal>, StoreError> {
        // Who the person is: see `find_person`.
        let external = external_id
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let contacts = contact_identities(&clean);
        let identity = external
            .clone()
            .or_else(|| contacts.iter().flatten().next().cloned());
        {
            if let Some((mut existing, mut changed)) =
                find_person(txn, external.as_deref(), &contacts)?
            {
                for (k, v) in clean {
                    if existing.fields.get(&k) != Some(&v) {
                        existing.fields.insert(k, v);
                        changed = true;
                    }
                }
                if let Some(campaign) = campaign {
                    let fields = std::mem::take(&mut existing.fields);
                    let (fields, missing) = self.missing_field(campaign, fields);
                    existing.fields = fields;
                    if let Some(refusal) = missing {
                        return Ok(Err(refusal));
                    }
                }
                if changed {
                    txn.put_candidate(&existing)?;
                }
                return Ok(Ok((existing, false)));
            }
        }
        let mut clean = clean;
        if let Some(campaign) = campaign {
            let (fields, missing) = self.missing_field(campaign, clean);
            clean = fields;
            if let Some(refusal) = missing {
                return Ok(Err(refusal));
            }
        }
        // Candidate ids are short and dense (`c1`, `c2`, ...): people type them.
        let id = txn.next_candidate_id()?;
        let token = match new_token() {
            Ok(t) => format!("{id}-{t}"),
            Err(e) => return Ok(Err(Refusal::NoRandomness(e))),
        };
        clean.insert("id".into(), id.clone());
        let record = CandidateRecord {
            id: id.clone(),
            external_id: identity.clone(),
            fields: clean,
            token: token.clone(),
            created_at: now,
            opted_out: false,
        };
        txn.new_candidate(record.clone());
        log(
            txn,
            &id,
            LogEntry {
                at: now,
                campaign: String::new(),
                kind: LogKind::Created {
                    source: record.fields.get("source").cloned(),
                },
            },
        )?;
        Ok(Ok((record, true)))
    }

    /// The first field a template of `campaign` prints with no default that
    /// a candidate with `fields` lacks, as a refusal; only templates on a
    /// channel the candidate can be reached on count. The fields are handed
    /// back as they came.
    pub(super) fn missing_field(
        &self,
        campaign: &Campaign,
        fields: BTreeMap<String, String>,
    ) -> (BTreeMap<String, String>, Option<Refusal>) {
        let probe = Candidate {
            id: String::new(),
            fields,
        };
        let needs = self.needs_of(campaign, probe.field("language"));
        let missing = needs
            .iter()
            .find(|n| probe.has_address(n.channel) && probe.field(&n.field).is_none())
            .map(|n| Refusal::MissingField {
                campaign: campaign.machine.name.clone(),
                field: n.field.clone(),
                template: n.template.clone(),
            });
        (probe.fields, missing)
    }

    /// The fields `campaign`'s templates need from a candidate speaking
    /// `language`, worked out once per campaign and language.
    fn needs_of(&self, campaign: &Campaign, language: Option<&str>) -> Arc<Vec<Need>> {
        let Some(templates) = &self.templates else {
            return Arc::default();
        };
        let name = &campaign.machine.name;
        // Asked at every enrollment: lowered only when it must be.
        let key: std::borrow::Cow<str> = match language.unwrap_or_default() {
            l if l.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) => {
                l.to_lowercase().into()
            }
            l => l.into(),
        };
        let mut cache = self.needs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(needs) = cache.get(name).and_then(|by| by.get(&*key)) {
            return needs.clone();
        }
        let mut needs: Vec<Need> = Vec::new();
        for (file, channel) in templates.campaign_files(&campaign.machine, language) {
            for printed in templates.printed(file) {
                // A field printed again on the same channel is found missing
                // by its first template already.
                let again = needs
                    .iter()
                    .any(|n| n.channel == channel && n.field == printed.field);
                if !printed.optional && !again {
                    needs.push(Need {
                        field: printed.field.clone(),
                        template: file.to_string(),
                        channel,
                    });
                }
            }
        }
        let needs = Arc::new(needs);
        cache
            .entry(name.clone())
            .or_default()
            .insert(key.into_owned(), needs.clone());
        needs
    }

    /// Empties the cache of [`Core::needs_of`].
    pub(super) fn forget_needs(&self) {
        self.needs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// A candidate by id, external id, email or phone identity, or token.
    pub fn find_candidate(
        &self,
        txn: &mut Txn<S>,
        who: &str,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        find(txn, who)
    }
}

/// The person an enrollment or application names, if known: by their
/// external id when one is given; else by their email, else their phone
/// (so the same email or phone twice is one candidate). An external id
/// not known yet also finds, by email or phone, a person who has none (one
/// who came through the apply form or an import), who takes it on: the
/// `bool` says the record changed. Two different external ids stay two
/// people, whatever their contacts.
fn find_person<T: Transaction>(
    txn: &mut T,
    external: Option<&str>,
    contacts: &[Option<String>; 2],
) -> Result<Option<(CandidateRecord, bool)>, StoreError> {
    if let Some(ext) = external {
        if let Some(c) = txn.candidate_known_as(ext)? {
            return Ok(Some((c, false)));
        }
    }
    for identity in contacts.iter().flatten() {
        let Some(mut c) = txn.candidate_known_as(identity)? else {
            continue;
        };
        let Some(ext) = external else {
            return Ok(Some((c, false)));
        };
        let anonymous = c
            .external_id
            .as_deref()
            .is_none_or(|id| id.starts_with("email:") || id.starts_with("phone:"));
        if anonymous {
            c.external_id = Some(ext.to_string());
            return Ok(Some((c, true)));
        }
    }
    Ok(None)
}

/// The identities of a person's contacts ([`email_identity`],
/// [`phone_identity`]), worked out once per request: the email's, then the
/// phone's.
fn contact_identities(fields: &BTreeMap<String, String>) -> [Option<String>; 2] {
    [
        fields.get("email").map(|e| email_identity(e)),
        fields.get("phone").map(|p| phone_identity(p)),
    ]
}

/// A candidate by id, external id, email or phone identity, or link token.
pub fn find<T: Transaction>(txn: &mut T, who: &str) -> Result<Option<CandidateRecord>, StoreError> {
    if let Some(c) = txn.candidate(who)? {
        return Ok(Some(c));
    }
    // A link token is the candidate id, `-`, and 128 random bits: found
    // through the id, then compared whole.
    if let Some((id, secret)) = who.rsplit_once('-') {
        if secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()) {
            if let Some(c) = txn.candidate(id)? {
                if same_token(c.token.as_bytes(), who.as_bytes()) {
                    return Ok(Some(c));
                }
            }
        }
    }
    let identities = [
        who.to_string(),
        format!("email:{}", who.to_lowercase()),
        format!("phone:{who}"),
    ];
    for identity in identities {
        if let Some(c) = txn.candidate_known_as(&identity)? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// 128 random bits from the operating system, hex: the secret part of a
/// tracked link's token (the token is `candidate-secret`, so the store
/// needs no index of tokens). Without OS randomness no link is made (a
/// guessable one is worse). The bits are drawn from the system 4 KiB at a
/// time (one call for 256 tokens, not one each: enrollments come in runs
/// of a thousand) and each is handed out once, then wiped.
pub fn new_token() -> Result<String, String> {
    const POOL: usize = 4096;
    struct Pool {
        bytes: [u8; POOL],
        used: usize,
    }
    thread_local! {
        static BITS: std::cell::RefCell<Pool> = const {
            std::cell::RefCell::new(Pool { bytes: [0; POOL], used: POOL })
        };
    }
    BITS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used + 16 > POOL {
            getrandom::fill(&mut pool.bytes)
                .map_err(|e| format!("no random bytes for a link token: {e}"))?;
            pool.used = 0;
        }
        let at = pool.used;
        let secret = &mut pool.bytes[at..at + 16];
        let token = hex::encode(&secret);
        secret.fill(0);
        pool.used += 16;
        Ok(token)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_secrets_are_never_handed_out_twice() {
        // Past several refills of the pool, on two threads.
        let draw = || (0..1_000).map(|_| new_token().unwrap()).collect::<Vec<_>>();
        let theirs = std::thread::spawn(draw).join().unwrap();
        let mine = draw();
        let all: HashSet<&String> = mine.iter().chain(&theirs).collect();
        assert_eq!(all.len(), 2_000);
        for token in all {
            assert_eq!(token.len(), 32);
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
            assert_ne!(token, &"0".repeat(32), "a wiped secret was handed out");
        }
    }
}
