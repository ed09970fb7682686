//! The method cache: `obj.name(args)` on a map whose entry is a function
//! (the object idiom) found again without the map's lock and called
//! without touching the function's reference count.
//!
//! Both are writes to lines every thread calling the same object shares:
//! two threads calling one object's method ran three times slower than
//! one. Each evaluator (one per task, so per thread) keeps its own cache;
//! a slot holds the map (weakly: its address stays its own), the name,
//! the map's change count when it was filled (`MapCell::changes`) and the
//! function. A call finds its slot and compares the count, a read only.
//!
//! A frame running a cached function borrows it from the slot and pins
//! the slot, which is then not refilled until the frame ends: the
//! function lives at least as long as its frame, whatever the map does.

use std::sync::{Arc, Weak};

use crate::runtime::Str;
use crate::runtime::value::{Closure, MapCell, MapRef};

/// Slots per evaluator: direct-mapped by map and name.
const SLOTS: usize = 64;

struct Slot {
    map: Weak<MapCell>,
    name: Str,
    changes: u64,
    closure: Arc<Closure>,
    /// Frames running `closure` borrowed from here.
    pins: u32,
}

/// One evaluator's cache; empty (no allocation) until its first method
/// call on a map.
#[derive(Default)]
pub(crate) struct MethodCache {
    slots: Vec<Option<Slot>>,
}

impl MethodCache {
    #[inline(always)]
    fn index(map: &MapRef, name: &Str) -> usize {
        let key = (Arc::as_ptr(map) as usize >> 4) ^ (name.as_ptr() as usize >> 3);
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) % SLOTS
    }

    /// The slot holding `map.name` as it is now, to [`pin`](Self::pin).
    #[inline(always)]
    pub(crate) fn find(&self, map: &MapRef, name: &Str) -> Option<u32> {
        let at = MethodCache::index(map, name);
        let slot = self.slots.get(at)?.as_ref()?;
        let same = Weak::as_ptr(&slot.map) == Arc::as_ptr(map)
            && Str::ptr_eq(&slot.name, name)
            && slot.changes == map.changes();
        same.then_some(at as u32)
    }

    /// Keeps `closure` as `map.name`, read under the map's lock when its
    /// change count was `changes`; gives its slot, or the closure back
    /// when that slot is pinned.
    pub(crate) fn fill(
        &mut self,
        map: &MapRef,
        name: &Str,
        changes: u64,
        closure: Arc<Closure>,
    ) -> Result<u32, Arc<Closure>> {
        if self.slots.is_empty() {
            self.slots.resize_with(SLOTS, || None);
        }
        let at = MethodCache::index(map, name);
        if self.slots[at].as_ref().is_some_and(|slot| slot.pins > 0) {
            return Err(closure);
        }
        let map = Arc::downgrade(map);
        self.slots[at] = Some(Slot { map, name: name.clone(), changes, closure, pins: 0 });
        Ok(at as u32)
    }

    /// The function in slot `at`, pinned there until [`unpin`](Self::unpin):
    /// the reference stays valid that long.
    #[inline(always)]
    pub(crate) fn pin(&mut self, at: u32) -> Option<*const Closure> {
        // `find` and `fill` only give filled slots.
        let slot = self.slots.get_mut(at as usize)?.as_mut()?;
        slot.pins += 1;
        Some(Arc::as_ptr(&slot.closure))
    }

    #[inline(always)]
    pub(crate) fn unpin(&mut self, at: u32) {
        if let Some(Some(slot)) = self.slots.get_mut(at as usize) {
            slot.pins = slot.pins.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::Value;
    use crate::runtime::value::{Key, table};

    fn closure() -> Arc<Closure> {
        let ast = crate::syntax::parse("fn f() { }").expect("parses");
        let program = crate::resolve::resolve(ast).expect("resolves");
        let def = program.all_functions.iter().find(|d| &*d.name == "f").expect("f").clone();
        Arc::new(Closure { def, upvalues: Box::new([]) })
    }

    fn map_with(name: &Str, f: &Arc<Closure>) -> MapRef {
        let mut entries = table(2);
        entries.insert(Key::Str(name.clone()), Value::Func(f.clone()));
        entries.insert(Key::Str("count".into()), Value::Int(0));
        match Value::map(entries) {
            Value::Map(map) => map,
            _ => unreachable!("a map"),
        }
    }

    #[test]
    fn a_cached_method_is_found_until_its_map_changes() {
        let (name, f) = (Str::from("area"), closure());
        let map = map_with(&name, &f);
        let mut cache = MethodCache::default();
        assert_eq!(cache.find(&map, &name), None);
        let at = cache.fill(&map, &name, map.changes(), f.clone()).ok().expect("a free slot");
        assert_eq!(cache.find(&map, &name), Some(at));
        // Another copy of the same text is another name: names are interned.
        assert_eq!(cache.find(&map, &Str::from("area")), None);
        // A number updated in place changes no function entry.
        {
            let mut entries = map.lock();
            let at = entries.get_index_of(&Key::Str("count".into())).expect("count");
            *entries.scalar_at_mut(at).expect("a number") = Value::Int(1);
        }
        assert_eq!(cache.find(&map, &name), Some(at));
        // Any other write does.
        map.lock().insert(Key::Str("other".into()), Value::Nil);
        assert_eq!(cache.find(&map, &name), None);
        // And an equal map elsewhere is not this one.
        let twin = map_with(&name, &f);
        cache.fill(&map, &name, map.changes(), f.clone()).ok().expect("a free slot");
        assert_eq!(cache.find(&twin, &name), None);
    }

    #[test]
    fn a_pinned_function_outlives_its_entry_and_keeps_its_slot() {
        let (name, f) = (Str::from("area"), closure());
        let map = map_with(&name, &f);
        let mut cache = MethodCache::default();
        let at = cache.fill(&map, &name, map.changes(), f).ok().expect("a free slot");
        let pinned = cache.pin(at).expect("a filled slot");
        // The running method replaces itself: the slot's copy is the last.
        let g = closure();
        map.lock().insert(Key::Str(name.clone()), Value::Func(g.clone()));
        // SAFETY: pinned above, not yet unpinned.
        assert_eq!(unsafe { &*pinned }.def.name.as_ref(), "f");
        // The new entry takes the same slot, pinned meanwhile.
        assert!(cache.fill(&map, &name, map.changes(), g.clone()).is_err());
        cache.unpin(at);
        assert_eq!(cache.fill(&map, &name, map.changes(), g).ok(), Some(at));
    }
}
