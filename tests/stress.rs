//! Stress tests of the primitives under real contention. Nothing here is
//! timed, and nothing waits by sleeping: threads meet on the primitives.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use concsh::sync::SyncError;
use concsh::sync::cancel::CancelToken;
use concsh::sync::condition::Condition;
use concsh::sync::event::Event;
use concsh::sync::lock::Lock;
use concsh::sync::queue::Queue;
use concsh::sync::semaphore::Semaphore;
use concsh::sync::wait::Wait;

fn forever(token: &CancelToken) -> Wait<'_> {
    Wait::new(token, None)
}

/// 8 producers and 8 consumers move 200,000 distinct items through one
/// bounded queue; every item arrives exactly once. Repeated 20 times.
#[test]
fn many_producers_and_consumers_lose_nothing() {
    const PRODUCERS: u64 = 8;
    const CONSUMERS: usize = 8;
    const ITEMS: u64 = 200_000;
    for round in 0..20 {
        let q = Queue::new(Some(64)).expect("queue");
        let token = Arc::new(CancelToken::default());
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let token = token.clone();
                std::thread::spawn(move || {
                    for i in (p..ITEMS).step_by(PRODUCERS as usize) {
                        q.put(&i.to_le_bytes(), forever(&token)).expect("put");
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..CONSUMERS)
            .map(|_| {
                let token = token.clone();
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match q.get(forever(&token)) {
                            Ok(bytes) => got.push(u64::from_le_bytes(bytes[..].try_into().expect("8 bytes"))),
                            Err(SyncError::Closed) => return got,
                            Err(e) => panic!("get failed: {e:?}"),
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().expect("producer");
        }
        q.close().expect("close");
        let mut seen = HashSet::new();
        for c in consumers {
            for item in c.join().expect("consumer") {
                assert!(seen.insert(item), "round {round}: item {item} arrived twice");
            }
        }
        assert_eq!(seen.len() as u64, ITEMS, "round {round}: items lost");
    }
}

/// Two threads increment a counter under one lock; no increment is lost.
#[test]
fn a_lock_excludes() {
    let lock = Lock::new().expect("lock");
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let threads: Vec<_> = (1..=4)
        .map(|me| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                let token = CancelToken::default();
                for _ in 0..50_000 {
                    lock.acquire(me, forever(&token)).expect("acquire");
                    // A non-atomic read-modify-write: only the lock makes it safe.
                    let v = counter.load(std::sync::atomic::Ordering::Relaxed);
                    counter.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                    lock.release().expect("release");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(counter.load(std::sync::atomic::Ordering::SeqCst), 200_000);
}

#[test]
fn wrong_use_is_an_error() {
    let token = CancelToken::default();
    let lock = Lock::new().expect("lock");
    assert_eq!(lock.release(), Err(SyncError::NotLocked));
    let sem = Semaphore::new(2, 2).expect("semaphore");
    assert_eq!(sem.release(), Err(SyncError::OverReleased));
    sem.acquire(forever(&token)).expect("acquire");
    sem.release().expect("release");
    let cond = Condition::new(None).expect("condition");
    assert_eq!(cond.wait(1, Wait::new(&token, Some(Duration::ZERO))), Err(SyncError::NotOwner));
    assert_eq!(cond.notify(1, false), Err(SyncError::NotOwner));
    let q = Queue::new(Some(1)).expect("queue");
    q.put(b"a", forever(&token)).expect("put");
    assert_eq!(q.put(b"b", Wait::new(&token, Some(Duration::ZERO))), Err(SyncError::Timeout));
    q.close().expect("close");
    assert_eq!(q.put(b"c", forever(&token)), Err(SyncError::Closed));
    assert_eq!(q.get(forever(&token)).expect("drains"), b"a");
    assert_eq!(q.get(forever(&token)), Err(SyncError::Closed));
}

/// A cancel wakes a task blocked on each kind of wait.
#[test]
fn cancel_wakes_every_kind_of_wait() {
    let lock = Lock::new().expect("lock");
    let waiter_token = CancelToken::default();
    lock.acquire(9, forever(&waiter_token)).expect("held");
    type Blocking = Box<dyn Fn(&CancelToken) -> Result<(), SyncError> + Send>;
    let cases: Vec<Blocking> = vec![
        Box::new(|t| Queue::new(None)?.get(forever(t)).map(|_| ())),
        Box::new(move |t| lock.acquire(1, forever(t))),
        Box::new(|t| Event::new()?.wait(forever(t)).map(|_| ())),
        Box::new(|t| {
            let s = Semaphore::new(1, 1)?;
            s.acquire(forever(t))?;
            s.acquire(forever(t))
        }),
        Box::new(|t| t.sleep(Duration::from_secs(1000), None, Default::default()).map_err(|_| SyncError::Cancelled)),
    ];
    for case in cases {
        let token = Arc::new(CancelToken::default());
        let (started, ready) = std::sync::mpsc::channel();
        let blocked = {
            let token = token.clone();
            std::thread::spawn(move || {
                started.send(()).expect("send");
                case(&token)
            })
        };
        ready.recv().expect("started");
        // Cancel whether or not the thread is asleep yet: both must work.
        token.cancel();
        assert_eq!(blocked.join().expect("thread"), Err(SyncError::Cancelled));
    }
}

/// A condition's notify wakes exactly one waiter; notify all wakes the rest.
#[test]
fn condition_notify_one_and_all() {
    let cond = Condition::new(None).expect("condition");
    let lock = cond.lock().expect("lock");
    let woken = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let waiting = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let threads: Vec<_> = (10..13)
        .map(|me| {
            let (woken, waiting) = (woken.clone(), waiting.clone());
            std::thread::spawn(move || {
                let token = CancelToken::default();
                lock.acquire(me, forever(&token)).expect("acquire");
                waiting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(cond.wait(me, forever(&token)), Ok(true));
                woken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                lock.release().expect("release");
            })
        })
        .collect();
    let token = CancelToken::default();
    // Wait (on the lock, not by sleeping) until all three are waiting.
    loop {
        lock.acquire(1, forever(&token)).expect("acquire");
        let all_in = waiting.load(std::sync::atomic::Ordering::SeqCst) == 3;
        if all_in {
            break;
        }
        lock.release().expect("release");
        std::thread::yield_now();
    }
    cond.notify(1, false).expect("notify");
    lock.release().expect("release");
    // Exactly one may wake: until it has, no other can.
    while woken.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        std::thread::yield_now();
    }
    lock.acquire(1, forever(&token)).expect("acquire");
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 1);
    cond.notify(1, true).expect("notify all");
    lock.release().expect("release");
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), 3);
}
