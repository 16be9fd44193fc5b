//! One TCP connection's life after admission: the handshake loop (framing,
//! deadlines, one handshake in flight, the admission checks around each engine
//! step), then the channel handoff under an idle timeout. Each handshake is
//! counted and timed ([`crate::metrics`]) before its final reply is written.

use std::sync::Arc;
use std::time::Duration;

use scram_dh::message::{ClientMessage, ServerMessage};
use scram_dh::session::Phase;
use scram_dh::{CredentialStore, Error, ErrorCode, Outcome, ServerEngine, SessionStore};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::admission::{Admission, ChannelGuard, ConnectionGuard, PeerKey, Refusal, costs_dh};
use crate::channel::{Role, SecureChannel};
use crate::error::NetError;
use crate::framing::{read_line, write_line};
use crate::log::{Escaped, escaped};
use crate::metrics::{self, Front, HandshakeOutcome, Kind, Timer};
use crate::server::{Service, Shared, now_ms};

/// How long a service may take to wind down after being told to stop because
/// its channel sat idle.
const IDLE_STOP_GRACE: Duration = Duration::from_secs(2);

impl<C, S, V> Shared<C, S, V>
where
    C: CredentialStore + 'static,
    S: SessionStore + 'static,
    V: Service,
{
    pub(crate) async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        mut conn: ConnectionGuard,
        mut stop: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let peer = conn.peer();
        let peer_key = peer.to_string();
        let limits = self.admission.limits().clone();
        let mut io = BufReader::new(stream);
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        // A connection that says nothing gets a few seconds, not a handshake's worth.
        let mut deadline =
            tokio::time::Instant::now() + limits.first_line_timeout.min(limits.handshake_timeout);
        let mut first_line = true;
        let mut in_flight: Option<Phase> = None;
        // The handshake in progress, for the metrics: dropped unfinished, it counts as `error`.
        let mut timer: Option<Timer> = None;
        let mut done = 0u32;
        loop {
            let line = tokio::select! {
                r = tokio::time::timeout_at(deadline, read_line(&mut io)) => r,
                _ = stop.changed() => return,
            };
            let line = match line {
                Err(_) => {
                    debug!(%peer, first_line, "handshake deadline passed");
                    let e = Error::InvalidMessage(if first_line {
                        "handshake timed out: no whole message soon enough after connecting".into()
                    } else {
                        "handshake timed out".into()
                    });
                    let _ = write_line(&mut io, &ServerMessage::error(&e).to_json()).await;
                    return;
                }
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) => return,
                Ok(Err(e)) => {
                    debug!(%peer, error = %escaped(&e), "read failed");
                    let reply = match e {
                        NetError::LineTooLong => {
                            Some(Error::InvalidMessage("handshake line longer than 16 KiB".into()))
                        }
                        // Raw invalid UTF-8 (finding L13): say so rather than close silently.
                        NetError::Protocol(error) => Some(error),
                        _ => None,
                    };
                    if let Some(error) = reply {
                        let _ = write_line(&mut io, &ServerMessage::error(&error).to_json()).await;
                    }
                    return;
                }
            };
            let received = std::time::Instant::now();
            if first_line {
                first_line = false;
                deadline = tokio::time::Instant::now() + limits.handshake_timeout;
            }
            let msg = match ClientMessage::from_json(&line) {
                Ok(msg) => msg,
                Err(error) => {
                    debug!(%peer, error = %escaped(&error), "malformed handshake message");
                    let _ = write_line(&mut io, &ServerMessage::error(&error).to_json()).await;
                    return;
                }
            };
            let pairing = match &msg {
                ClientMessage::RegistrationPairing(_) => Some(Phase::Registration),
                ClientMessage::AuthPairing(_) => Some(Phase::Authentication),
                _ => None,
            };
            if pairing.is_some() && in_flight.is_some() {
                // SPEC 5: one handshake in flight per connection (finding L9).
                let e = Error::InvalidMessage("a handshake is already in progress on this connection".into());
                debug!(%peer, "second pairing on one connection");
                let _ = write_line(&mut io, &ServerMessage::error(&e).to_json()).await;
                return;
            }
            if timer.is_none() {
                timer = Some(Timer::start(Front::Tcp, Kind::of(&msg), received));
            }
            let outcome =
                match admitted_step(&self.engine, &self.admission, peer, msg, &peer_key, &mut rng).await {
                    Ok(outcome) => outcome,
                    Err(refusal) => {
                        finish(&mut timer, HandshakeOutcome::Refused);
                        let _ = write_line(&mut io, &refusal.reply().to_json()).await;
                        return;
                    }
                };
            match outcome {
                Outcome::Continue(reply) => {
                    in_flight = in_flight.or(pairing);
                    if write_line(&mut io, &reply.to_json()).await.is_err() {
                        return;
                    }
                }
                Outcome::Registered { reply, username } => {
                    finish(&mut timer, HandshakeOutcome::Ok);
                    if write_line(&mut io, &reply.to_json()).await.is_err() {
                        return;
                    }
                    info!(%peer, username = %Escaped(&username), "registered");
                    in_flight = None;
                    done += 1;
                    if done >= limits.max_handshakes_per_connection {
                        return;
                    }
                    deadline = tokio::time::Instant::now() + limits.handshake_timeout;
                }
                Outcome::Failed { reply, error, username } => {
                    finish(&mut timer, HandshakeOutcome::of_error(&error));
                    let _ = write_line(&mut io, &reply.to_json()).await;
                    let account = username.as_deref().map(Escaped);
                    match error.code() {
                        // Counted and summarised by the admission layer, not logged one by one.
                        ErrorCode::AuthenticationFailed => {
                            debug!(%peer, account = ?account, "authentication failed");
                        }
                        ErrorCode::ServerError => {
                            warn!(%peer, account = ?account, error = %escaped(&error), "handshake failed")
                        }
                        code => debug!(%peer, %code, error = %escaped(&error), "handshake refused"),
                    }
                    return;
                }
                Outcome::Authenticated { reply, auth } => {
                    let (username, keys) = auth.into_parts();
                    let Some(keys) = keys else {
                        finish(&mut timer, HandshakeOutcome::Ok);
                        let _ = write_line(&mut io, &reply.to_json()).await;
                        info!(%peer, username = %Escaped(&username), channel = false, "authenticated");
                        return;
                    };
                    // Take the channel slot before A4, so a refused client hears `busy`
                    // instead of a silent close after it thought it was in (finding H1).
                    let guard = match self.admission.open_channel(&mut conn, &username) {
                        Ok(guard) => guard,
                        Err(refusal) => {
                            finish(&mut timer, HandshakeOutcome::Refused);
                            info!(%peer, username = %Escaped(&username), reason = %refusal.message(), "channel refused");
                            let _ = write_line(&mut io, &refusal.reply().to_json()).await;
                            return;
                        }
                    };
                    finish(&mut timer, HandshakeOutcome::Ok);
                    if write_line(&mut io, &reply.to_json()).await.is_err() {
                        return;
                    }
                    info!(%peer, username = %Escaped(&username), channel = true, "authenticated");
                    let channel = SecureChannel::new(io, username, keys, Role::Server);
                    self.channel(channel, guard, stop, limits.channel_idle_timeout).await;
                    return;
                }
            }
        }
    }

    /// Serves a channel until the service returns; a channel with no record in
    /// either direction for `idle_timeout` is told to stop, then dropped.
    async fn channel(
        &self,
        channel: SecureChannel<BufReader<TcpStream>>,
        _guard: ChannelGuard,
        mut stop: watch::Receiver<bool>,
        idle_timeout: Duration,
    ) {
        let activity = channel.activity();
        let user = Escaped(channel.username()).to_string();
        let (tell, told) = watch::channel(false);
        let serve = self.service.serve(channel, told);
        tokio::pin!(serve);
        let mut give_up: Option<tokio::time::Instant> = None;
        loop {
            let idle_left = idle_timeout.saturating_sub(activity.idle_for());
            tokio::select! {
                () = &mut serve => return,
                r = stop.changed(), if give_up.is_none() => {
                    let _ = r;
                    let _ = tell.send(true);
                    // The server's own shutdown grace bounds this wait.
                    give_up = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
                () = tokio::time::sleep(idle_left), if give_up.is_none() => {
                    if activity.idle_for() >= idle_timeout {
                        info!(username = %user, idle_secs = idle_timeout.as_secs(), "closing idle channel");
                        let _ = tell.send(true);
                        give_up = Some(tokio::time::Instant::now() + IDLE_STOP_GRACE);
                    }
                }
                () = tokio::time::sleep_until(give_up.unwrap_or_else(tokio::time::Instant::now)), if give_up.is_some() => {
                    debug!(username = %user, "service did not stop in time; dropping the channel");
                    return;
                }
            }
        }
    }
}

/// One handshake message through the admission layer and the engine, as every
/// front runs it: admission check (caps, buckets, penalties, the last maybe in a
/// shared store) → engine step → the outcome recorded for the penalties. `Err` is the admission's refusal
/// (the engine never saw the message).
pub(crate) async fn admitted_step<C, S>(
    engine: &ServerEngine<C, S>,
    admission: &Admission,
    peer: PeerKey,
    msg: ClientMessage,
    peer_key: &str,
    rng: &mut rand_core::UnwrapErr<getrandom::SysRng>,
) -> Result<Outcome, Refusal>
where
    C: CredentialStore,
    S: SessionStore,
{
    admission.admit_message(peer, &msg).await?;
    // A DH step costs up to ~10 ms of CPU (modp8192): on a multi-thread
    // runtime, tell tokio, so this worker's other connections move on.
    let heavy = costs_dh(&msg);
    let dh = if heavy { metrics::dh_group(&msg) } else { None };
    let step = engine.handle(msg, peer_key, now_ms(), rng);
    let handle = tokio::runtime::Handle::current();
    let outcome = if heavy && handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        tokio::task::block_in_place(|| handle.block_on(step))
    } else {
        step.await
    };
    admission.learn_outcome(peer, &outcome).await;
    if let (Some(group), Outcome::Continue(_)) = (dh, &outcome) {
        metrics::record_dh(group);
    }
    Ok(outcome)
}

/// Ends the timed handshake `slot` holds, if any, with `outcome`.
fn finish(slot: &mut Option<Timer>, outcome: HandshakeOutcome) {
    if let Some(timer) = slot.take() {
        timer.finish(outcome);
    }
}
