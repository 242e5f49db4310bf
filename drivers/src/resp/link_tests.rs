//! The link's queue: what a write takes, and what it leaves.

use super::*;

/// A state with one waiter per command, the given ones gone away.
fn queued(commands: &[&[u8]], gone: &[usize]) -> (State, Vec<oneshot::Receiver<Outcome>>) {
    let mut state = State::default();
    let mut receivers = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let (reply, replied) = oneshot::channel();
        let before = state.out.len();
        encode(&mut state.out, &[Bytes::copy_from_slice(command)]);
        state.waiting.push_back(Waiter {
            left: 1,
            got: Vec::new(),
            len: state.out.len() - before,
            reply,
        });
        state.unsent += 1;
        if !gone.contains(&i) {
            receivers.push(replied);
        }
    }
    (state, receivers)
}

#[test]
fn commands_of_callers_gone_before_they_were_written_are_not_sent() {
    let (mut state, _live) = queued(&[b"A", b"BB", b"CCC", b"DDDD"], &[1, 3]);
    let mut out = BytesMut::new();
    state.take_out(&mut out).unwrap();
    assert_eq!(&out[..], b"*1\r\n$1\r\nA\r\n*1\r\n$3\r\nCCC\r\n");
    assert_eq!(state.waiting.len(), 2);
    assert_eq!(state.unsent, 0);
    assert!(state.out.is_empty());
}

#[test]
fn a_write_takes_a_bounded_lot_and_leaves_the_rest_queued() {
    let big = vec![b'x'; 200 * 1024];
    let (mut state, _live) = queued(&[&big, &big, b"C"], &[]);
    let mut out = BytesMut::new();
    state.take_out(&mut out).unwrap();
    assert!(
        out.len() > 200 * 1024 && out.len() < 201 * 1024,
        "one command"
    );
    assert_eq!((state.waiting.len(), state.unsent), (3, 2));
    out.clear();
    state.take_out(&mut out).unwrap();
    assert!(out.ends_with(b"*1\r\n$1\r\nC\r\n"), "the other two fit");
    assert_eq!((state.unsent, state.out.len()), (0, 0));
    // Books that do not add up are an error, not a misdelivery.
    state.unsent = 5;
    assert!(state.take_out(&mut BytesMut::new()).is_err());
}

#[test]
fn commands_already_written_keep_their_waiters() {
    let (mut state, _live) = queued(&[b"A", b"B"], &[0]);
    // The first was written before its caller went away: its reply is
    // still to come and must be read into its waiter.
    state.unsent = 1;
    state.out = state.out.split_off(11);
    let mut out = BytesMut::new();
    state.take_out(&mut out).unwrap();
    assert_eq!(&out[..], b"*1\r\n$1\r\nB\r\n");
    assert_eq!(state.waiting.len(), 2);
}
