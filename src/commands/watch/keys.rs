//! Single keys on a terminal: `a` accept pending baselines, `r` rerun all, `q` quit.
//!
//! The terminal is put in non-canonical mode without echo (keys arrive as typed, unseen) and
//! restored when the guard drops, so a quit, an error or a panic leaves the shell as it was. Ctrl-C
//! still raises SIGINT, which `watch` handles like `q`.

use std::io::{IsTerminal, Read};

use tokio::sync::mpsc;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Accept,
    RerunAll,
    Quit,
}

impl Key {
    fn of(byte: u8) -> Option<Key> {
        match byte.to_ascii_lowercase() {
            b'a' => Some(Key::Accept),
            b'r' => Some(Key::RerunAll),
            b'q' => Some(Key::Quit),
            _ => None,
        }
    }
}

/// Restores the terminal's settings when dropped.
pub struct RawMode(libc::termios);

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restoring settings read earlier from the same descriptor.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.0);
        }
    }
}

/// Starts reading keys when stdin is a terminal (and not `ci`): the guard and the keys. Without
/// a terminal, none: `watch` then stops on SIGINT or SIGTERM only.
pub fn start(ci: bool) -> Option<(RawMode, mpsc::UnboundedReceiver<Key>)> {
    if !std::io::stdin().is_terminal() || ci {
        return None;
    }
    let guard = raw_mode()?;
    let (sender, receiver) = mpsc::unbounded_channel();
    // A blocking read has no async form for a terminal; the thread ends with the process.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut byte = [0u8; 1];
        while let Ok(1) = stdin.read(&mut byte) {
            if let Some(key) = Key::of(byte[0])
                && sender.send(key).is_err()
            {
                return;
            }
        }
    });
    Some((guard, receiver))
}

fn raw_mode() -> Option<RawMode> {
    // SAFETY: termios is plain data; tcgetattr fills it, and it is only used when that succeeded.
    unsafe {
        let mut saved: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
            return None;
        }
        let mut raw = saved;
        raw.c_lflag &= !(libc::ICANON | libc::ECHO);
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) != 0 {
            return None;
        }
        Some(RawMode(saved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_read_in_either_case_and_others_are_ignored() {
        assert_eq!(Key::of(b'a'), Some(Key::Accept));
        assert_eq!(Key::of(b'R'), Some(Key::RerunAll));
        assert_eq!(Key::of(b'q'), Some(Key::Quit));
        assert_eq!(Key::of(b'x'), None);
        assert_eq!(Key::of(b'\n'), None);
    }
}
