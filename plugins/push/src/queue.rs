//! A bounded queue, oldest first: when full, the oldest item makes room and is counted as
//! dropped (the newest are worth more: a later snapshot of a counter carries what an
//! earlier one did; a recent trace is the one being looked for).

use std::collections::VecDeque;

#[derive(Debug, Clone)]
pub struct Bounded<T> {
    items: VecDeque<T>,
    max: usize,
    /// Items dropped: the queue was full, or they were dropped on purpose
    /// ([`Bounded::retain`]).
    pub dropped: u64,
}

impl<T> Bounded<T> {
    /// An empty queue holding at most `max` items (at least one).
    pub fn new(max: usize) -> Bounded<T> {
        Bounded {
            items: VecDeque::new(),
            max: max.max(1),
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds `item` at the back; when full, the front one goes and is counted.
    pub fn push(&mut self, item: T) {
        if self.items.len() >= self.max {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(item);
    }

    /// Takes the `n` oldest out (sent, or refused for good), and returns them.
    pub fn pop(&mut self, n: usize) -> std::collections::vec_deque::Drain<'_, T> {
        self.items.drain(..n.min(self.items.len()))
    }

    /// Keeps the items `keep` says yes to; the others are counted as dropped.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        let before = self.items.len();
        self.items.retain(keep);
        self.dropped += (before - self.items.len()) as u64;
    }

    /// Oldest first.
    pub fn iter(&self) -> std::collections::vec_deque::Iter<'_, T> {
        self.items.iter()
    }

    pub fn front(&self) -> Option<&T> {
        self.items.front()
    }
}

impl<'a, T> IntoIterator for &'a Bounded<T> {
    type Item = &'a T;
    type IntoIter = std::collections::vec_deque::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_the_oldest_go_and_are_counted() {
        let mut q = Bounded::new(3);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!((q.len(), q.dropped), (3, 2));
        assert_eq!(q.front(), Some(&2), "the newest are kept");
        assert_eq!(q.pop(2).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(q.pop(5).count(), 1, "at most what there is");
        assert!(q.is_empty());
        q.push(7);
        q.push(8);
        q.retain(|i| *i > 7);
        assert_eq!((q.len(), q.dropped), (1, 3));
        assert_eq!(Bounded::<u8>::new(0).max, 1);
    }
}
