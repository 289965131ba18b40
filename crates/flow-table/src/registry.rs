//! Tables shared by name within a process: every thread that asks for a
//! name gets the same table. The first request makes it, so its options
//! win; later requests get the table and their options are not used.
//! Forgetting a name ([`unshare_table`]) does not touch the table: handles
//! already given out keep working, and the next request for the name makes
//! a new table.
//!
//! Names are kept per table type: a caller that shares its own type (the
//! JavaScript binding shares a [`FlowTable`](crate::FlowTable) with its
//! value encoding) has its own namespace, and two types never meet under
//! one name.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

type Named = HashMap<String, Arc<dyn Any + Send + Sync>>;

/// The process's shared tables, by type then name.
fn tables() -> &'static Mutex<HashMap<TypeId, Named>> {
  static TABLES: OnceLock<Mutex<HashMap<TypeId, Named>>> = OnceLock::new();
  TABLES.get_or_init(Default::default)
}

/// The table of type `T` named `name`, for every thread of the process.
/// The first call for a name makes it with `make`; later calls return the
/// same table without calling `make`. `make` runs under the registry's
/// lock, so racing first calls make one table between them (and `make`
/// must not share or unshare tables itself). If `make` fails, its error is
/// returned and nothing is registered.
pub fn shared_table<T, E>(name: &str, make: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E>
where
  T: Send + Sync + 'static,
{
  let mut all = tables().lock().unwrap_or_else(PoisonError::into_inner);
  let named = all.entry(TypeId::of::<T>()).or_default();
  if let Some(t) = named.get(name) {
    return Ok(
      Arc::clone(t)
        .downcast()
        .expect("registered under T's TypeId"),
    );
  }
  let t = Arc::new(make()?);
  named.insert(
    name.to_owned(),
    Arc::clone(&t) as Arc<dyn Any + Send + Sync>,
  );
  Ok(t)
}

/// Forgets the table of type `T` named `name`; false if there was none.
/// The table lives on in the handles already given out.
pub fn unshare_table<T: Send + Sync + 'static>(name: &str) -> bool {
  tables()
    .lock()
    .unwrap_or_else(PoisonError::into_inner)
    .get_mut(&TypeId::of::<T>())
    .is_some_and(|named| named.remove(name).is_some())
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::atomic::{AtomicUsize, Ordering};

  // The registry is process-wide and tests run in parallel: each test
  // uses its own names.

  #[test]
  fn the_first_call_makes_the_table_and_later_calls_share_it() {
    let a = shared_table("registry-first", || Ok::<_, ()>(1u32)).unwrap();
    let b = shared_table("registry-first", || -> Result<u32, ()> {
      panic!("a second call must not make a table")
    })
    .unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(*b, 1);
    assert!(unshare_table::<u32>("registry-first"));
  }

  #[test]
  fn a_failed_make_registers_nothing() {
    let e = shared_table::<u32, _>("registry-failed", || Err("bad options"));
    assert_eq!(e.unwrap_err(), "bad options");
    assert!(!unshare_table::<u32>("registry-failed"));
    let t = shared_table("registry-failed", || Ok::<_, ()>(7u32)).unwrap();
    assert_eq!(*t, 7);
    assert!(unshare_table::<u32>("registry-failed"));
  }

  #[test]
  fn unshare_forgets_the_name_but_handles_keep_the_table() {
    let old = shared_table("registry-unshare", || Ok::<_, ()>(String::from("old"))).unwrap();
    assert!(unshare_table::<String>("registry-unshare"));
    assert!(!unshare_table::<String>("registry-unshare"), "already gone");
    assert_eq!(*old, "old");
    let new = shared_table("registry-unshare", || Ok::<_, ()>(String::from("new"))).unwrap();
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(*new, "new");
    assert!(unshare_table::<String>("registry-unshare"));
  }

  #[test]
  fn each_type_has_its_own_names() {
    let n = shared_table("registry-types", || Ok::<_, ()>(5u64)).unwrap();
    let s = shared_table("registry-types", || Ok::<_, ()>(String::from("five"))).unwrap();
    assert_eq!((*n, s.as_str()), (5, "five"));
    assert!(unshare_table::<u64>("registry-types"));
    assert!(!unshare_table::<u64>("registry-types"));
    assert!(unshare_table::<String>("registry-types"), "still there");
    assert!(!unshare_table::<i8>("registry-types"), "never shared");
  }

  #[test]
  fn racing_threads_get_one_table() {
    struct Counted(usize);
    let made = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..8)
      .map(|_| {
        let made = Arc::clone(&made);
        std::thread::spawn(move || {
          shared_table("registry-race", || {
            Ok::<_, ()>(Counted(made.fetch_add(1, Ordering::SeqCst)))
          })
          .unwrap()
        })
      })
      .collect();
    let tables: Vec<Arc<Counted>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(made.load(Ordering::SeqCst), 1);
    assert!(tables.iter().all(|t| Arc::ptr_eq(t, &tables[0])));
    assert_eq!(tables[0].0, 0);
    assert!(unshare_table::<Counted>("registry-race"));
  }
}
