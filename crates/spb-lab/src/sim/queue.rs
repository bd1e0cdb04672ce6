//! The event queue: a binary heap keyed by (virtual time, sequence number). The sequence number
//! makes the order of simultaneous events the order they were scheduled in: deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scheduled event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ev {
    pub t: u64,
    pub seq: u64,
    /// Component index (or [`GLOBAL`]).
    pub comp: u16,
    pub op: u8,
    /// Operand (a holder id, a worker index, ...).
    pub a: u32,
    /// Generation of the operand, to drop events of dead holders.
    pub gen: u32,
}

/// Component index of global events.
pub const GLOBAL: u16 = u16::MAX;

impl Ord for Ev {
    fn cmp(&self, o: &Self) -> Ordering {
        // min-heap on (t, seq)
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The queue.
#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Ev>,
    seq: u64,
}

impl Queue {
    #[inline]
    pub fn push(&mut self, t: u64, comp: u16, op: u8, a: u32, gen: u32) {
        self.seq += 1;
        self.heap.push(Ev {
            t,
            seq: self.seq,
            comp,
            op,
            a,
            gen,
        });
    }
    #[inline]
    pub fn pop(&mut self) -> Option<Ev> {
        self.heap.pop()
    }
    #[inline]
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|e| e.t)
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_then_fifo() {
        let mut q = Queue::default();
        q.push(5, 0, 1, 0, 0);
        q.push(3, 0, 2, 0, 0);
        q.push(5, 0, 3, 0, 0);
        q.push(3, 0, 4, 0, 0);
        let ops: Vec<u8> = std::iter::from_fn(|| q.pop()).map(|e| e.op).collect();
        assert_eq!(ops, vec![2, 4, 1, 3]);
    }
}
