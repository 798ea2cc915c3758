//! Backups: `nudge backup DIR` writes a consistent copy of the store into
//! a new folder (a store of its own, with a ledger anchored at the copied
//! commit), taken between two commits: by the daemon's core thread while
//! it runs, or directly when no daemon holds the store. `nudge restore DIR`
//! puts one back in place of the store (the daemon stopped): sled's files
//! are replaced, the store's commit ledger is kept and anchored at the
//! backup's commit, so the deliveries it recorded after the backup are
//! known and never sent again ([`super::ledger`]). `nudge verify --accept`
//! anchors the ledger at the store as it is (a damaged store, no backup).

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// What a backup or a restore did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Copied {
    /// The folder written (the backup, or the restored store).
    #[schema(value_type = String)]
    pub path: PathBuf,
    /// Records copied.
    pub records: usize,
    /// The commit the copy holds (0: none recorded).
    pub commit: u64,
    /// For a restore: the last commit the store had acknowledged before.
    pub replaced: Option<u64>,
    /// For a restore: where the replaced store's files were moved.
    #[schema(value_type = Option<String>)]
    pub moved_to: Option<PathBuf>,
}

/// A folder that does not exist or is empty.
fn empty_target(dir: &Path) -> Result<(), StoreError> {
    let occupied = dir.exists()
        && fs::read_dir(dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if occupied {
        return Err(StoreError::Unreadable {
            path: dir.to_path_buf(),
            why: "the backup folder must be new or empty".into(),
        });
    }
    Ok(())
}

impl SledStore {
    /// Writes a copy of the store into `dir` (new or empty). The caller
    /// makes sure no commit runs meanwhile (the core's thread, between two
    /// batches); the batch written behind, if any, is waited for.
    pub fn backup_to(&self, dir: &Path) -> Result<Copied, StoreError> {
        empty_target(dir)?;
        self.writer.wait_idle();
        let copy = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()?;
        let mut records = 0;
        let mut batch = sled::Batch::default();
        let mut mark = None;
        for item in self.db()?.iter() {
            let (k, v) = item?;
            if k.as_ref() == key::meta("commit").as_slice() {
                mark = ledger::Mark::from_bytes(&v);
            }
            batch.insert(k, v);
            records += 1;
            if records % 4096 == 0 {
                copy.apply_batch(std::mem::take(&mut batch))?;
            }
        }
        copy.apply_batch(batch)?;
        copy.flush()?;
        drop(copy);
        write_layout(dir).map_err(StoreError::Io)?;
        ledger::anchor(dir, mark)?;
        Ok(Copied {
            path: dir.to_path_buf(),
            records,
            commit: mark.map_or(0, |m| m.seq),
            replaced: None,
            moved_to: None,
        })
    }
}

/// Holds the store folder's holder lock (the one a running daemon keeps),
/// so nothing opens the store while its files are replaced.
struct Held {
    _lock: fs::File,
}

fn hold(store: &Path) -> Result<Option<Held>, StoreError> {
    if !store.exists() {
        return Ok(None);
    }
    // The lock a running daemon keeps even while it reopens sled's files.
    super::hold(store, || false).map(|lock| Some(Held { _lock: lock }))
}

/// Puts the backup in `backup` back in place of the store in `store`
/// (the daemon must be stopped). The store's files move to a folder beside
/// it; its commit ledger stays, anchored at the backup's commit.
pub fn restore(store: &Path, backup: &Path) -> Result<Copied, StoreError> {
    // The backup must be a whole store; it is read, then closed.
    let (mark, records) = {
        let (opened, _) = SledStore::open_as(backup, 16 << 20, true)?;
        let mark = opened
            .db()?
            .get(key::meta("commit"))?
            .and_then(|v| ledger::Mark::from_bytes(&v));
        (mark, opened.db()?.len())
    };
    wait_released(backup);
    let before = ledger::read(store)?.and_then(|c| c.high).map(|m| m.seq);
    let _held = hold(store)?;
    let moved_to = if store.exists() {
        let aside = aside_name(store);
        fs::create_dir_all(&aside).map_err(StoreError::Io)?;
        for entry in fs::read_dir(store).map_err(StoreError::Io)? {
            let entry = entry.map_err(StoreError::Io)?;
            let name = entry.file_name();
            if name == LEDGER_FILE {
                // Kept, and also copied aside with the files it followed.
                fs::copy(entry.path(), aside.join(&name)).map_err(StoreError::Io)?;
                continue;
            }
            fs::rename(entry.path(), aside.join(&name)).map_err(StoreError::Io)?;
        }
        Some(aside)
    } else {
        fs::create_dir_all(store).map_err(StoreError::Io)?;
        None
    };
    copy_tree(backup, store).map_err(StoreError::Io)?;
    fs::File::open(store)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::Io)?;
    ledger::anchor(store, mark)?;
    Ok(Copied {
        path: store.to_path_buf(),
        records,
        commit: mark.map_or(0, |m| m.seq),
        replaced: before,
        moved_to,
    })
}

/// Takes a store that lost commits (or whose ledger disagrees) as it is:
/// its ledger is anchored at the store's last commit, keeping what it knows
/// was delivered. Refused when sled cannot read the store.
pub fn accept(store: &Path) -> Result<Copied, StoreError> {
    let (opened, _) = SledStore::open_as(store, 16 << 20, false)?;
    let mark = guard::guarded(store, || {
        Ok(opened
            .db()?
            .get(key::meta("commit"))?
            .and_then(|v| ledger::Mark::from_bytes(&v)))
    })?;
    let before = ledger::read(store)?.and_then(|c| c.high).map(|m| m.seq);
    ledger::anchor(store, mark)?;
    Ok(Copied {
        path: store.to_path_buf(),
        records: opened.db()?.len(),
        commit: mark.map_or(0, |m| m.seq),
        replaced: before,
        moved_to: None,
    })
}

/// Waits (briefly) for sled's threads to let go of a store this process
/// closed.
fn wait_released(path: &Path) {
    let started = std::time::Instant::now();
    while started.elapsed() < RELEASE {
        match hold(path) {
            Err(StoreError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            _ => return,
        }
    }
}

/// A new folder beside the store for its replaced files.
fn aside_name(store: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let name = store
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let mut aside = store.with_file_name(format!("{name}.replaced-{stamp}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = store.with_file_name(format!("{name}.replaced-{stamp}-{n}"));
    }
    aside
}

/// Copies a backup's files (not its ledger) into `to`, synced.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == LEDGER_FILE {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
            fs::File::open(&target)?.sync_all()?;
        }
    }
    Ok(())
}
