//! The type every state-machine step returns (STYLE 2).

/// What a step returns: the message to send and the state to keep (STYLE 2).
#[must_use = "the message must be sent and the state kept"]
#[derive(Debug)]
pub struct Step<M, S> {
    /// Send this to the peer.
    pub message: M,
    /// Keep this for the next step.
    pub state: S,
}
