//! A task's value stack: the registers of every frame, one run each.
//!
//! Below `top` are the frames' registers; above it, up to the buffer's
//! end, every slot holds `nil`. A call therefore writes only its
//! arguments, and a return clears its registers in the one pass that
//! releases them: nothing is filled twice, and growing a frame is a
//! compare. The buffer only grows.

use std::ops::{Index, IndexMut};

use crate::runtime::Value;

/// Slots the first buffer holds: deep enough for most scripts' calls.
const FIRST: usize = 1024;

#[derive(Default)]
pub struct ValueStack {
    /// Every slot initialised: frames' registers below `top`, `nil` above.
    slots: Vec<Value>,
    top: usize,
}

impl ValueStack {
    /// The end of the last frame: where the next one starts.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.top
    }

    /// Makes room for `more` slots above `top`, each `nil`.
    #[inline(always)]
    pub fn reserve(&mut self, more: usize) {
        if self.slots.len() - self.top < more {
            self.grow(more);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, more: usize) {
        let need = self.top.saturating_add(more);
        let size = need.max(self.slots.len().saturating_mul(2)).max(FIRST);
        self.slots.resize_with(size, || Value::Nil);
    }

    /// Moves `top` up to `top`, the slots between holding `nil`.
    #[inline(always)]
    pub fn grow_to(&mut self, top: usize) {
        if top > self.top {
            self.reserve(top - self.top);
            self.top = top;
        }
    }

    #[inline(always)]
    pub fn push(&mut self, value: Value) {
        self.reserve(1);
        // The slot holds `nil`, which needs no drop: a plain write.
        // SAFETY: `reserve` made `top` a slot of the buffer.
        unsafe { std::ptr::write(self.slots.as_mut_ptr().add(self.top), value) };
        self.top += 1;
    }

    pub fn extend(&mut self, values: impl IntoIterator<Item = Value>) {
        for value in values {
            self.push(value);
        }
    }

    /// Sets `top` to `len`, new slots holding `fill`.
    pub fn resize(&mut self, len: usize, fill: Value) {
        if len <= self.top {
            self.truncate(len);
            return;
        }
        self.reserve(len - self.top);
        for slot in &mut self.slots[self.top..len] {
            *slot = fill.clone();
        }
        self.top = len;
    }

    /// Ends the frames from `base` up: each slot back to `nil`, a value
    /// holding something released on the way (a frame of numbers costs a
    /// write per slot, no call).
    #[inline(always)]
    pub fn truncate(&mut self, base: usize) {
        let top = self.top;
        if base >= top {
            return;
        }
        self.top = base;
        // SAFETY: `top` never passes the buffer's end (see `frame`).
        clear(unsafe { self.slots.get_unchecked_mut(base..top) });
    }

    /// `truncate(base)` for the frame on top, `base` up, of which only the
    /// first `used` slots may hold anything but `nil`: the slots above are
    /// left as they are.
    ///
    /// # Safety
    /// `base + used` is at most `top`, and every slot from there to `top`
    /// holds `nil` (a value left there would stay above `top`, where a
    /// call writes over it unread).
    #[inline(always)]
    pub unsafe fn truncate_used(&mut self, base: usize, used: usize) {
        let end = base + used;
        debug_assert!(
            end <= self.top && (end..self.top).all(|i| matches!(self.slots[i], Value::Nil)),
            "a register past those a return clears holds a value"
        );
        self.top = base;
        // SAFETY: below the old `top`, so inside the buffer.
        clear(unsafe { self.slots.get_unchecked_mut(base..end) });
    }

    /// The first of the `size` registers of the frame at `base`, which
    /// lies below `top` (a frame that did not would be a bug of the
    /// caller, stopped here rather than read past).
    #[inline(always)]
    pub fn frame(&mut self, base: usize, size: usize) -> *mut Value {
        assert!(base.saturating_add(size) <= self.top, "a frame above the stack's top");
        // SAFETY: `top` never passes the buffer's end (`reserve` grows the
        // buffer before `top` moves), so `base` is inside it.
        unsafe { self.slots.as_mut_ptr().add(base) }
    }

    /// `frame` where the caller knows the frame lies below `top`: a frame
    /// just pushed, or one resumed when the frame above it returned.
    ///
    /// # Safety
    /// `base + size` is at most `top`.
    #[inline(always)]
    pub unsafe fn frame_unchecked(&mut self, base: usize, size: usize) -> *mut Value {
        debug_assert!(base.saturating_add(size) <= self.top, "a frame above the stack's top");
        // SAFETY: below `top`, so inside the buffer (see `frame`).
        unsafe { self.slots.as_mut_ptr().add(base) }
    }

    /// Slot `i`, known to lie below `top`.
    ///
    /// # Safety
    /// `i` is below `top`.
    #[inline(always)]
    pub unsafe fn get_unchecked_mut(&mut self, i: usize) -> &mut Value {
        debug_assert!(i < self.top, "a register above the stack's top");
        // SAFETY: below `top`, so inside the buffer (see `frame`).
        unsafe { self.slots.get_unchecked_mut(i) }
    }

    /// The first slot; every slot to the buffer's end is initialised.
    #[inline(always)]
    pub fn as_mut_ptr(&mut self) -> *mut Value {
        self.slots.as_mut_ptr()
    }

    /// Sets `top` after writing the slots below it in place.
    ///
    /// # Safety
    /// `top` is at most the buffer's end (`reserve` made room), and every
    /// slot below it holds a value the frames own.
    #[inline(always)]
    pub unsafe fn set_top(&mut self, top: usize) {
        debug_assert!(top <= self.slots.len());
        self.top = top;
    }
}

/// Sets each slot to `nil`, releasing what it held (a number costs a
/// write, no call).
#[inline(always)]
fn clear(slots: &mut [Value]) {
    for slot in slots {
        if slot.is_scalar_copy() {
            // SAFETY: the old value needs no drop.
            unsafe { std::ptr::write(slot, Value::Nil) };
        } else {
            drop(std::mem::take(slot));
        }
    }
}

impl Index<usize> for ValueStack {
    type Output = Value;

    #[inline(always)]
    fn index(&self, i: usize) -> &Value {
        assert!(i < self.top, "a register above the stack's top");
        // SAFETY: below `top`, so inside the buffer (see `frame`).
        unsafe { self.slots.get_unchecked(i) }
    }
}

impl IndexMut<usize> for ValueStack {
    #[inline(always)]
    fn index_mut(&mut self, i: usize) -> &mut Value {
        assert!(i < self.top, "a register above the stack's top");
        // SAFETY: below `top`, so inside the buffer (see `frame`).
        unsafe { self.slots.get_unchecked_mut(i) }
    }
}

impl Drop for ValueStack {
    fn drop(&mut self) {
        self.truncate(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// What a frame leaves is released on return, and the next frame
    /// over the same slots finds `nil` in each.
    #[test]
    fn a_returned_frame_leaves_nil_behind() {
        let mut stack = ValueStack::default();
        let bytes = Arc::new(vec![1u8]);
        stack.push(Value::Int(1));
        stack.push(Value::Bytes(bytes.clone()));
        stack.grow_to(5);
        stack[4] = Value::Bytes(bytes.clone());
        assert_eq!(Arc::strong_count(&bytes), 3);
        stack.truncate(1);
        assert_eq!(Arc::strong_count(&bytes), 1, "the frame's values are released");
        assert_eq!(stack.len(), 1);
        stack.grow_to(6);
        assert!((1..6).all(|i| matches!(stack[i], Value::Nil)));
        assert!(matches!(stack[0], Value::Int(1)));
    }

    /// Growing keeps the frames below `top` and fills the rest with `nil`.
    #[test]
    fn growing_keeps_the_frames() {
        let mut stack = ValueStack::default();
        for i in 0..3000 {
            stack.push(Value::Int(i));
        }
        stack.resize(3002, Value::Unset);
        assert!(matches!(stack[2999], Value::Int(2999)));
        assert!(matches!(stack[3001], Value::Unset));
        stack.resize(10, Value::Unset);
        stack.grow_to(3002);
        assert!(matches!(stack[3001], Value::Nil));
    }
}
