//! The sled store: the one module that talks to sled.
//!
//! Layout (tree names are the constants in [`trees`]):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `b"schema"` | store schema version, `u32` big-endian |
//! | `meta` | `b"agenda"` | the current agenda, a versioned [`StoredAgenda`] |
//! | `imports` | import id, `u64` big-endian (so keys sort by time) | a versioned [`ImportRecord`] |
//!
//! Every value is versioned: one byte of format version, then JSON. A value with a version this code
//! does not know is an error, never misread.
//!
//! Invariants:
//! - Replacing the agenda and recording the import happen in one sled transaction, and are flushed
//!   to disk (`flush_async().await`) before the caller is told it succeeded. A reader of the store sees
//!   the old agenda or the new one, never a mix.
//! - Nothing outside this module names a tree or encodes a key.

use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::agenda::Agenda;
use crate::import::Format;

/// Tree names.
pub mod trees {
    pub const META: &str = "meta";
    pub const IMPORTS: &str = "imports";
}

const SCHEMA_KEY: &[u8] = b"schema";
const AGENDA_KEY: &[u8] = b"agenda";

/// The layout version this code writes. Opening a store with a newer one is refused.
pub const SCHEMA_VERSION: u32 = 1;

/// A value stored with a format version byte.
trait Versioned: Serialize + DeserializeOwned {
    const VERSION: u8;
    const WHAT: &'static str;

    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![Self::VERSION];
        serde_json::to_writer(&mut bytes, self).map_err(|err| StoreError::Encode {
            what: Self::WHAT,
            message: err.to_string(),
        })?;
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&version, json)) if version == Self::VERSION => serde_json::from_slice(json)
                .map_err(|err| StoreError::Decode {
                    what: Self::WHAT,
                    message: err.to_string(),
                }),
            Some((&version, _)) => Err(StoreError::Decode {
                what: Self::WHAT,
                message: format!(
                    "stored with format version {version}, this build reads version {}",
                    Self::VERSION
                ),
            }),
            None => Err(StoreError::Decode {
                what: Self::WHAT,
                message: "the value is empty".into(),
            }),
        }
    }
}

/// Where the current agenda came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgendaSource {
    /// The embedded demo, placed with its first day on `first_day`.
    Demo { first_day: Date },
    /// An imported file.
    File { name: String, format: Format },
}

/// The agenda as stored, with where and when it came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredAgenda {
    pub agenda: Agenda,
    pub source: AgendaSource,
    pub imported_at: Timestamp,
}

impl Versioned for StoredAgenda {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "the agenda";
}

/// One import attempt, kept for the operator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub id: u64,
    pub at: Timestamp,
    pub source: String,
    pub outcome: ImportOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ImportOutcome {
    Replaced {
        format: Option<Format>,
        conference: String,
        sessions: usize,
        rooms: usize,
        days: usize,
    },
    Failed {
        error: String,
    },
}

impl Versioned for ImportRecord {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "an import record";
}

#[derive(Debug)]
pub enum StoreError {
    /// Another process (usually a running `concierge serve`) holds the database.
    Locked {
        path: PathBuf,
    },
    Open {
        path: PathBuf,
        message: String,
    },
    /// The store was written by a newer concierge.
    Schema {
        found: u32,
    },
    Sled(sled::Error),
    Encode {
        what: &'static str,
        message: String,
    },
    Decode {
        what: &'static str,
        message: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked { path } => write!(
                f,
                "the data dir {} is in use by another concierge process (is `concierge serve` running?); \
                 stop it first, or point this command at another --data-dir",
                path.display()
            ),
            StoreError::Open { path, message } => {
                write!(f, "cannot open the store in {}: {message}", path.display())
            }
            StoreError::Schema { found } => write!(
                f,
                "the store has layout version {found}, newer than this build's {SCHEMA_VERSION}; upgrade concierge"
            ),
            StoreError::Sled(err) => write!(f, "storage error: {err}"),
            StoreError::Encode { what, message } => write!(f, "cannot encode {what}: {message}"),
            StoreError::Decode { what, message } => {
                write!(f, "cannot read {what} from the store: {message}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> StoreError {
        StoreError::Sled(err)
    }
}

/// A handle on the store. Cheap to clone; all clones share one database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    meta: sled::Tree,
    imports: sled::Tree,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, with `cache_bytes` of page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|err| StoreError::Open {
            path: dir.to_path_buf(),
            message: err.to_string(),
        })?;
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(cache_bytes)
            .open()
            .map_err(|err| {
                // sled reports a held lock as an IO error whose text names the lock.
                let message = err.to_string();
                if message.contains("could not acquire lock") {
                    StoreError::Locked {
                        path: dir.to_path_buf(),
                    }
                } else {
                    StoreError::Open {
                        path: dir.to_path_buf(),
                        message,
                    }
                }
            })?;
        Store::from_db(db)
    }

    /// A store that lives in a temporary directory and is deleted on drop, for tests.
    pub fn temporary() -> Result<Store, StoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Store::from_db(db)
    }

    fn from_db(db: sled::Db) -> Result<Store, StoreError> {
        let meta = db.open_tree(trees::META)?;
        let imports = db.open_tree(trees::IMPORTS)?;
        match meta.get(SCHEMA_KEY)? {
            None => {
                meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Decode {
                        what: "the schema version",
                        message: format!("{} bytes, expected 4", bytes.len()),
                    })?;
                if found > SCHEMA_VERSION {
                    return Err(StoreError::Schema { found });
                }
            }
        }
        Ok(Store { db, meta, imports })
    }

    /// The current agenda, if one was ever stored.
    pub fn load_agenda(&self) -> Result<Option<StoredAgenda>, StoreError> {
        self.meta
            .get(AGENDA_KEY)?
            .map(|bytes| StoredAgenda::decode(&bytes))
            .transpose()
    }

    /// Replaces the agenda and records the import, atomically, and returns once both are on disk.
    pub async fn replace_agenda(
        &self,
        agenda: Agenda,
        source: AgendaSource,
        now: Timestamp,
    ) -> Result<ImportRecord, StoreError> {
        let record = ImportRecord {
            id: self.db.generate_id()?,
            at: now,
            source: match &source {
                AgendaSource::Demo { .. } => crate::agenda::demo::DEMO_SOURCE.to_string(),
                AgendaSource::File { name, .. } => name.clone(),
            },
            outcome: ImportOutcome::Replaced {
                format: match &source {
                    AgendaSource::Demo { .. } => Some(Format::Native),
                    AgendaSource::File { format, .. } => Some(*format),
                },
                conference: agenda.conference.name.clone(),
                sessions: agenda.sessions.len(),
                rooms: agenda.rooms.len(),
                days: agenda.conference.days.len(),
            },
        };
        let stored = StoredAgenda {
            agenda,
            source,
            imported_at: now,
        };
        let agenda_bytes = stored.encode()?;
        let record_bytes = record.encode()?;
        let key = record.id.to_be_bytes();
        (&self.meta, &self.imports)
            .transaction(|(meta, imports)| {
                meta.insert(AGENDA_KEY, agenda_bytes.as_slice())?;
                imports.insert(&key, record_bytes.as_slice())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(|err| match err {
                TransactionError::Storage(err) => StoreError::Sled(err),
                TransactionError::Abort(()) => StoreError::Sled(sled::Error::Unsupported(
                    "the agenda transaction aborted".into(),
                )),
            })?;
        self.db.flush_async().await?;
        Ok(record)
    }

    /// Records an import that failed, so the operator can see it. The agenda is not touched.
    pub async fn record_failed_import(
        &self,
        source: &str,
        error: &str,
        now: Timestamp,
    ) -> Result<ImportRecord, StoreError> {
        let record = ImportRecord {
            id: self.db.generate_id()?,
            at: now,
            source: source.to_string(),
            outcome: ImportOutcome::Failed {
                error: error.to_string(),
            },
        };
        self.imports
            .insert(record.id.to_be_bytes(), record.encode()?)?;
        self.db.flush_async().await?;
        Ok(record)
    }

    /// The most recent imports, newest first.
    pub fn recent_imports(&self, limit: usize) -> Result<Vec<ImportRecord>, StoreError> {
        self.imports
            .iter()
            .rev()
            .take(limit)
            .map(|entry| {
                let (_, bytes) = entry?;
                ImportRecord::decode(&bytes)
            })
            .collect()
    }

    /// True when the database answers a read.
    pub fn is_healthy(&self) -> bool {
        self.meta.get(SCHEMA_KEY).is_ok()
    }

    /// Writes everything to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_values_refuse_unknown_versions() {
        let record = ImportRecord {
            id: 7,
            at: Timestamp::UNIX_EPOCH,
            source: "x".into(),
            outcome: ImportOutcome::Failed { error: "e".into() },
        };
        let mut bytes = record.encode().unwrap();
        assert_eq!(ImportRecord::decode(&bytes).unwrap(), record);
        bytes[0] = 9;
        let err = ImportRecord::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(ImportRecord::decode(&[]).is_err());
    }
}
