// The consult room in the browser: camera, waiting room, the call, chat, reconnection.
//
// Signaling follows video/PROTOCOL.md: a ticket from /api/v1/consults/<id>/ticket, a websocket
// whose first frame is {type: "join", token}, then offer/answer/candidate between admitted
// participants. Between two browsers the perfect-negotiation pattern runs (the patient is the
// polite side: it yields when both offer at once). When the websocket drops, the page reconnects
// with backoff and a fresh ticket, rejoins the same session and restarts ICE; the other side sees
// "reconnecting…" meanwhile. iOS: videos are playsinline, the local one muted, and playback of
// the remote one starts from the Join tap.
(() => {
  "use strict";
  const root = document.querySelector("[data-consult]");
  if (!root) return;

  const $ = (selector) => root.querySelector(selector);
  const text = (name) => root.dataset[name] || "";
  const status = $("[data-status]");
  const remoteVideo = $("[data-remote]");
  const localVideo = $("[data-local]");
  const role = root.dataset.role;
  const isStaff = role !== "patient";

  const state = {
    socket: null,
    pc: null,
    polite: role === "patient",
    makingOffer: false,
    ignoreOffer: false,
    me: null,
    peerId: null,
    stream: null,
    admitted: false,
    ended: false,
    attempt: 0,
    pinger: null,
    facing: "user",
    iceServers: [],
  };
  window.tsunaguConsult = state; // for tests and support: read-only use, please

  function say(message) {
    status.textContent = message;
  }

  function csrf() {
    return document.querySelector('meta[name="csrf-token"]')?.content || "";
  }

  async function camera() {
    try {
      state.stream = await navigator.mediaDevices.getUserMedia({
        audio: true,
        video: { facingMode: state.facing, width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (error) {
      state.cameraError = `${error.name}: ${error.message}`;
      console.warn("consult: no camera or microphone", state.cameraError);
      say(text("msgCameraDenied"));
      throw error;
    }
    localVideo.srcObject = state.stream;
  }

  async function ticket() {
    const response = await fetch(root.dataset.ticketUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.detail || text("msgClosed"));
      error.final = response.status !== 429 && response.status < 500;
      throw error;
    }
    return body;
  }

  function send(message) {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      state.socket.send(JSON.stringify({ v: 1, ...message }));
    }
  }

  // --- the peer connection (perfect negotiation) --------------------------------------------

  function preferH264(pc) {
    // iPhones decode H.264 in hardware: offer it first, VP8 as well (aiortc and browsers have both).
    if (!window.RTCRtpSender?.getCapabilities) return;
    const codecs = RTCRtpSender.getCapabilities("video")?.codecs || [];
    const h264 = codecs.filter((c) => c.mimeType === "video/H264");
    const rest = codecs.filter((c) => c.mimeType !== "video/H264");
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.sender.track?.kind === "video" && transceiver.setCodecPreferences) {
        try {
          transceiver.setCodecPreferences([...h264, ...rest]);
        } catch (_) {
          /* a browser without the preference API keeps its default order */
        }
      }
    }
  }

  function startCall() {
    if (state.pc) return state.pc;
    const pc = new RTCPeerConnection({ iceServers: state.iceServers });
    state.pc = pc;
    for (const track of state.stream.getTracks()) pc.addTrack(track, state.stream);
    preferH264(pc);
    pc.ontrack = ({ streams }) => {
      if (remoteVideo.srcObject !== streams[0]) remoteVideo.srcObject = streams[0];
      remoteVideo.play().catch(() => {
        // No tap on this page yet (a reload): the browser wants one before playing sound.
        document.addEventListener("click", () => remoteVideo.play().catch(() => {}), { once: true });
      });
    };
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) send({ type: "candidate", candidate: candidate.toJSON(), to: state.peerId || undefined });
    };
    pc.onnegotiationneeded = async () => {
      try {
        state.makingOffer = true;
        await pc.setLocalDescription();
        send({ type: "offer", sdp: pc.localDescription.sdp, to: state.peerId || undefined });
      } catch (error) {
        console.error("consult: offer failed", error);
      } finally {
        state.makingOffer = false;
      }
    };
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    return pc;
  }

  async function onDescription(type, sdp) {
    const pc = startCall();
    const collision = type === "offer" && (state.makingOffer || pc.signalingState !== "stable");
    state.ignoreOffer = !state.polite && collision;
    if (state.ignoreOffer) return;
    await pc.setRemoteDescription({ type, sdp });
    if (type === "offer") {
      await pc.setLocalDescription();
      send({ type: "answer", sdp: pc.localDescription.sdp, to: state.peerId || undefined });
    }
  }

  async function onCandidate(candidate) {
    try {
      await startCall().addIceCandidate(candidate);
    } catch (error) {
      if (!state.ignoreOffer) console.error("consult: candidate refused", error);
    }
  }

  // --- the room ------------------------------------------------------------------------------

  function peersChanged(peers) {
    if (!isStaff) return;
    const list = $("[data-waiting-list]");
    list.replaceChildren();
    const waiting = peers.filter((p) => p.role === "patient");
    if (waiting.length === 0) {
      const none = document.createElement("li");
      none.className = "hint";
      none.textContent = "—";
      list.append(none);
    }
    for (const peer of waiting) {
      const item = document.createElement("li");
      const since = peer.waiting_since ? new Date(peer.waiting_since).toLocaleTimeString() : "";
      const check = peer.precall ? ` · ${peer.precall}` : "";
      item.textContent = `${peer.status} · ${peer.presence}${since ? " · " + since : ""}${check}`;
      item.dataset.participant = peer.participant;
      if (peer.status === "waiting" && peer.presence === "connected") {
        const admit = document.createElement("button");
        admit.type = "button";
        admit.className = "primary";
        admit.dataset.admit = peer.participant;
        admit.textContent = text("msgAdmit");
        admit.addEventListener("click", () => send({ type: "admit", participant: peer.participant }));
        item.append(admit);
      }
      list.append(item);
    }
  }

  const peers = new Map();

  function onMessage(message) {
    switch (message.type) {
      case "joined": {
        state.me = message.participant;
        state.polite = message.polite;
        state.attempt = 0;
        for (const peer of message.peers || []) peers.set(peer.participant, peer);
        peersChanged([...peers.values()]);
        state.admitted = ["admitted", "in_call", "present"].includes(message.status) && (isStaff || message.status !== "waiting");
        if (message.status === "waiting") say(text("msgWaiting"));
        else say(text("msgAdmitted"));
        const inCall = ["admitted", "in_call"].includes(message.status);
        if (message.resumed && state.pc) {
          // The network may have changed under us: restart ICE from this side (a new offer with
          // fresh credentials follows); the other side answers it and keeps its own state.
          state.pc.restartIce();
        } else if (message.resumed && inCall) {
          // A reloaded page: the other side's connection points at the old page. Start afresh.
          send({ type: "restart", reason: "renegotiate" });
          startCall();
        }
        if (isStaff || message.status !== "waiting") {
          showCallControls();
          loadChat();
        }
        break;
      }
      case "admitted":
        if (message.participant === state.me) {
          state.admitted = true;
          say(text("msgAdmitted"));
          showCallControls();
          loadChat();
          startCall();
        }
        break;
      case "presence": {
        const peer = message.peer;
        peers.set(peer.participant, peer);
        peersChanged([...peers.values()]);
        if (peer.participant !== state.me && peer.status !== "waiting") state.peerId = peer.participant;
        if (peer.presence === "reconnecting") say(text("msgPeerReconnecting"));
        else if (peer.presence === "left" && peer.participant === state.peerId) say(text("msgPeerLeft"));
        else if (peer.presence === "connected" && state.admitted) say(text("msgAdmitted"));
        if (isStaff && peer.role === "patient" && ["admitted", "in_call"].includes(peer.status)) {
          startCall();
        }
        break;
      }
      case "waiting": {
        const parts = [];
        if (message.status === "with_another_patient") parts.push(text("msgWithAnother"));
        if (message.status === "running_late") parts.push(text("msgRunningLate"));
        if (message.minutes) parts.push(text("msgMinutes").replace("{m}", message.minutes));
        if (message.note) parts.push(message.note);
        say([text("msgWaiting"), ...parts].join(" "));
        break;
      }
      case "offer":
      case "answer":
        if (message.from) state.peerId = message.from;
        onDescription(message.type, message.sdp).catch((e) => console.error("consult:", e));
        break;
      case "candidate":
        onCandidate(message.candidate);
        break;
      case "restart":
        if (message.reason === "renegotiate") {
          if (state.pc) state.pc.close();
          state.pc = null;
          startCall();
        } else if (state.pc && ["disconnected", "failed"].includes(state.pc.iceConnectionState)) {
          state.pc.restartIce(); // only when our own path is broken too
        }
        break;
      case "chat":
        addChat(message.text, message.from === state.me);
        break;
      case "recording":
        recordingChanged(message);
        break;
      case "error":
        console.warn("consult:", message.code, message.message_en);
        break;
      default:
        break;
    }
  }

  function showCallControls() {
    for (const selector of ["[data-mute]", "[data-camera]", "[data-switch]", "[data-leave]", "[data-end]", "[data-share]"]) {
      const button = $(selector);
      if (button) button.hidden = false;
    }
    $("[data-chat]").hidden = false;
    $("[data-recording-panel]").hidden = false;
    $("[data-join]").hidden = true;
    $("[data-precall]").hidden = true;
  }

  async function loadChat() {
    // After a reload or a rejoin: the lines so far (a waiting patient gets none).
    const answer = await fetch(`/api/v1/consults/${root.dataset.appointment}/chat`, {
      credentials: "same-origin",
    }).catch(() => null);
    if (!answer?.ok) return;
    const { lines } = await answer.json();
    $("[data-chat-lines]").replaceChildren();
    for (const line of lines) addChat(line.text, line.mine);
  }

  function addChat(line, mine) {
    const item = document.createElement("li");
    item.textContent = line;
    if (mine) item.className = "mine";
    $("[data-chat-lines]").append(item);
  }

  async function connect() {
    let seat;
    try {
      seat = await ticket();
    } catch (error) {
      say(error.message);
      if (!error.final) retry();
      return;
    }
    state.iceServers = seat.ice_servers || [];
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}${seat.websocket}`);
    state.socket = socket;
    socket.onopen = () => {
      const join = { v: 1, type: "join", token: seat.token };
      if (state.precall) join.precall = state.precall; // staff see it beside the waiting patient
      socket.send(JSON.stringify(join));
      clearInterval(state.pinger);
      state.pinger = setInterval(() => send({ type: "ping" }), 15000);
    };
    socket.onmessage = (event) => {
      try {
        onMessage(JSON.parse(event.data));
      } catch (error) {
        console.error("consult: a message failed", error);
      }
    };
    socket.onclose = (event) => {
      clearInterval(state.pinger);
      if (state.socket !== socket) return;
      state.socket = null;
      if (event.code === 4010) {
        state.ended = true;
        sessionStorage.removeItem(REMEMBER);
        say(text("msgEnded"));
        hangUp();
      } else if ([4001, 4003, 4004, 4008, 4009].includes(event.code) || state.ended) {
        if (event.code !== 4009) say(text("msgClosed"));
      } else {
        retry();
      }
    };
  }

  function retry() {
    if (state.ended) return;
    state.attempt += 1;
    const wait = Math.min(10000, 500 * 2 ** (state.attempt - 1)) * (0.5 + Math.random() / 2);
    say(text("msgReconnecting"));
    setTimeout(connect, wait);
  }

  function hangUp() {
    if (state.pc) state.pc.close();
    state.pc = null;
    stopRecorder();
    if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  }

  // --- consented recording ----------------------------------------------------------------------
  //
  // The room says whether recording is off, requested (who agreed so far) or on. Once on, this
  // page sends its camera and microphone over a second, send-only connection to the server's
  // recorder (which only answers: one complete offer, no trickle), and closes it when the room
  // says off. Everyone sees a recording indicator and may stop it.

  const panel = $("[data-recording-panel]");
  const recorder = { pc: null, segment: 0, status: "off" };
  state.recorder = recorder;

  function recordingChanged(message) {
    recorder.status = message.status;
    const mine = (message.consented || []).includes(state.me);
    const shown = {
      "[data-recording-request]": message.status === "off",
      "[data-recording-consent]": message.status === "requested" && !mine,
      "[data-recording-decline]": message.status === "requested" && !mine,
      "[data-recording-stop]": message.status === "on" || (message.status === "requested" && mine),
    };
    for (const [selector, visible] of Object.entries(shown)) {
      const button = $(selector);
      if (button) button.hidden = !visible;
    }
    const words = {
      off: "msgRecOff",
      requested: mine ? "msgRecWaiting" : "msgRecAsked",
      on: "msgRecOn",
    }[message.status];
    $("[data-recording-status]").textContent = panel.dataset[words] || "";
    root.classList.toggle("recording", message.status === "on");
    if (message.status === "on") {
      if (!recorder.pc || recorder.segment !== message.segment) {
        startRecorder(message.segment).catch((error) => recorderFailed(error));
      }
    } else {
      stopRecorder();
    }
  }

  function recorderFailed(error) {
    console.warn("consult: recording", error);
    $("[data-recording-status]").textContent = panel.dataset.msgRecFailed;
  }

  async function startRecorder(segment) {
    stopRecorder();
    recorder.segment = segment;
    const pc = new RTCPeerConnection({ iceServers: state.iceServers });
    recorder.pc = pc;
    for (const track of state.stream.getTracks()) {
      pc.addTransceiver(track, { direction: "sendonly", streams: [state.stream] });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await fetch(panel.dataset.recordingUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, segment }),
    });
    const body = await answer.json().catch(() => ({}));
    if (recorder.pc !== pc) return; // stopped meanwhile
    if (!answer.ok) {
      stopRecorder();
      throw new Error(body.detail || answer.statusText);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    recorder.id = body.recording;
    pc.onconnectionstatechange = () => {
      // The recorder has no ICE restart: after a network change, a fresh connection (and file).
      if (pc.connectionState === "failed" && recorder.pc === pc && recorder.status === "on") {
        startRecorder(segment).catch((error) => recorderFailed(error));
      }
    };
  }

  function stopRecorder() {
    if (recorder.pc) recorder.pc.close();
    recorder.pc = null;
  }

  function videoSenders() {
    return [state.pc, recorder.pc]
      .filter(Boolean)
      .flatMap((pc) => pc.getSenders())
      .filter((sender) => sender.track?.kind === "video");
  }

  const recordingActions = {
    "[data-recording-request]": "request",
    "[data-recording-consent]": "consent",
    "[data-recording-decline]": "decline",
    "[data-recording-stop]": "stop",
  };
  for (const [selector, action] of Object.entries(recordingActions)) {
    $(selector)?.addEventListener("click", () => send({ type: "recording", action, id: `r${Date.now()}` }));
  }

  // --- the pre-call check ----------------------------------------------------------------------

  const PRECALL_LEVELS = { good: "good", fair: "fair", too_weak_for_video: "poor", no_connection: "failed" };

  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => pc.iceGatheringState === "complete" && resolve();
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 5000); // enough candidates by then
    });
  }

  async function precall() {
    const box = $("[data-precall-result]");
    box.hidden = false;
    box.textContent = text("msgTesting");
    const headers = { "Content-Type": "application/json", "X-CSRF-Token": csrf() };
    const pc = new RTCPeerConnection({ iceServers: state.iceServers });
    try {
      for (const track of state.stream.getTracks()) pc.addTrack(track, state.stream);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc); // the server's peer takes one complete offer
      const started = await fetch(root.dataset.precallUrl, {
        method: "POST", credentials: "same-origin", headers,
        body: JSON.stringify({ sdp: pc.localDescription.sdp }),
      });
      const body = await started.json();
      if (!started.ok) throw new Error(body.detail || started.statusText);
      await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
      for (let i = 0; i < 40; i += 1) {
        await new Promise((r) => setTimeout(r, 750));
        const answer = await fetch(`${root.dataset.precallUrl}/${body.check}`, { credentials: "same-origin" });
        const outcome = await answer.json();
        if (outcome.status === "done") {
          const ja = document.documentElement.lang === "ja";
          box.textContent = outcome.advice.map((a) => (ja ? a.ja : a.en)).join(" ");
          state.precall = PRECALL_LEVELS[outcome.level] || "skipped";
          return;
        }
      }
    } catch (error) {
      box.textContent = error.message;
      state.precall = "failed";
    } finally {
      pc.close();
    }
  }

  $("[data-precall]").addEventListener("click", async () => {
    const button = $("[data-precall]");
    button.disabled = true;
    try {
      if (!state.stream) await camera();
      await precall();
    } finally {
      button.disabled = false;
    }
  });

  // --- controls ---------------------------------------------------------------------------------

  const REMEMBER = `tsunagu-consult:${root.dataset.appointment}`;

  async function join() {
    $("[data-join]").disabled = true;
    try {
      if (!state.stream) await camera();
      remoteVideo.play().catch(() => {}); // a user gesture: iOS lets the remote audio play
      sessionStorage.setItem(REMEMBER, "joined"); // a reload of this tab rejoins by itself
      await connect();
    } catch (_) {
      $("[data-join]").disabled = false;
    }
  }

  $("[data-join]").addEventListener("click", join);
  if (sessionStorage.getItem(REMEMBER) === "joined") join();

  function toggle(selector, kind) {
    const button = $(selector);
    button?.addEventListener("click", () => {
      const off = button.getAttribute("aria-pressed") !== "true";
      for (const track of state.stream?.getTracks() || []) if (track.kind === kind) track.enabled = !off;
      button.setAttribute("aria-pressed", String(off));
    });
  }
  toggle("[data-mute]", "audio");
  toggle("[data-camera]", "video");

  $("[data-switch]")?.addEventListener("click", async () => {
    state.facing = state.facing === "user" ? "environment" : "user";
    const fresh = await navigator.mediaDevices.getUserMedia({ video: { facingMode: state.facing } });
    const track = fresh.getVideoTracks()[0];
    for (const sender of videoSenders()) await sender.replaceTrack(track);
    for (const old of state.stream.getVideoTracks()) {
      old.stop();
      state.stream.removeTrack(old);
    }
    state.stream.addTrack(track);
    localVideo.srcObject = state.stream;
  });

  $("[data-share]")?.addEventListener("click", async () => {
    const screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    const track = screen.getVideoTracks()[0];
    const senders = videoSenders(); // the patient, and the recording when there is one
    if (senders.length === 0) return;
    const camera = senders[0].track;
    for (const sender of senders) await sender.replaceTrack(track);
    track.onended = () => videoSenders().forEach((sender) => sender.replaceTrack(camera));
  });

  $("[data-end]")?.addEventListener("click", () => send({ type: "end" }));
  $("[data-leave]")?.addEventListener("click", () => {
    state.ended = true;
    sessionStorage.removeItem(REMEMBER);
    send({ type: "leave" });
    state.socket?.close(1000);
    hangUp();
    say(text("msgEnded"));
  });

  $("[data-chat-form]")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = event.target.elements.text;
    const line = input.value.trim();
    if (!line) return;
    send({ type: "chat", text: line, id: `c${Date.now()}`, to: state.peerId || undefined });
    input.value = ""; // the line shows when the server relays it back (so it was really sent)
  });

  $("[data-note]")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const minutes = Number(event.target.elements.minutes.value);
    send({ type: "waiting", status: "with_another_patient", minutes });
  });

  $("[data-identity]")?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const result = event.submitter?.value || "confirmed";
    const answer = await fetch(form.dataset.url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify({ document: form.elements.document.value, result }),
    });
    const body = await answer.json().catch(() => ({}));
    $("[data-identity-status]").textContent = answer.ok ? text("msgIdentityRecorded") : body.detail || "";
  });

  document.addEventListener("visibilitychange", () => {
    // iOS stops the camera in the background: take it again when the page comes back.
    if (document.visibilityState !== "visible" || !state.stream || !state.pc) return;
    const ended = state.stream.getVideoTracks().some((t) => t.readyState === "ended");
    if (ended) $("[data-switch]")?.click();
  });
})();
