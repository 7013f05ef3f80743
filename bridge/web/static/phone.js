// The web phone: one call at a time from this browser to the AI agent, through Asterisk's own
// WebRTC (SIP over WSS with JsSIP, DTLS-SRTP media). The bridge serves this page and, for the
// live transcript, answers polls keyed by this call's random id (SIP header X-Bridge-Session).
// Every way a call can fail ends in a sentence on the page saying what went wrong and what to do.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    username: $("username"), password: $("password"), call: $("call"), hangup: $("hangup"),
    mute: $("mute"), status: $("status"), error: $("error"), remote: $("remote"),
    transcript: document.querySelector("#transcript tbody"),
    keys: Array.from(document.querySelectorAll("#keypad button")),
  };
  const POLL_MS = 500;
  const STAGES = [
    ["endpoint", "end of turn"], ["stt_final", "transcript"], ["decision", "decision"],
    ["llm_first_token", "model"],
    ["tts_first_audio", "voice"], ["first_frame_out", "first sound"],
  ];

  // State the page shows, also read by the browser tests (window.phone).
  const phone = {
    state: "loading", error: null, errorKind: null, codec: null, session: null,
    localStream: null, remoteStream: null, ua: null, call: null, settings: null, muted: false,
    mediaUp: false, transcript: null,
  };
  window.phone = phone;
  let mediaTimer = null;
  let pollTimer = null;

  function setState(state, text) {
    phone.state = state;
    ui.status.textContent = text;
    ui.status.dataset.state = state;
    const inCall = ["connecting", "ringing", "connected"].includes(state);
    ui.call.disabled = inCall || state === "loading" || state === "unsupported";
    ui.hangup.disabled = !inCall;
    ui.mute.disabled = state !== "connected";
    ui.keys.forEach((key) => { key.disabled = state !== "connected"; });
  }

  function showError(kind, text) {
    phone.error = text;
    phone.errorKind = kind;
    ui.error.textContent = text;
    ui.error.dataset.kind = kind;
    ui.error.classList.add("shown");
  }

  function clearError() {
    phone.error = phone.errorKind = null;
    ui.error.textContent = "";
    delete ui.error.dataset.kind;
    ui.error.classList.remove("shown");
  }

  function wssHost(url) {
    return new URL(url.replace(/^ws/, "http")).hostname;
  }

  function certificateHint(url) {
    const page = url.replace(/^wss:/, "https:").replace(/^ws:/, "http:");
    return url.startsWith("wss:")
      ? ` If Asterisk uses a self-signed certificate, open ${page} once in this browser and accept it.`
      : "";
  }

  async function microphone() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error(
        "This page must be opened over https:// (or as http://localhost on the same machine): " +
        "browsers only give the microphone to secure pages."), { kind: "insecure" });
    }
    try {
      return await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false,
      });
    } catch (error) {
      const name = error && error.name;
      if (name === "NotAllowedError" || name === "SecurityError") {
        throw Object.assign(new Error(
          "Microphone access was refused. Allow the microphone for this page (the icon in the " +
          "address bar, or the browser's site settings) and call again."), { kind: "microphone" });
      }
      if (name === "NotFoundError" || name === "OverconstrainedError") {
        throw Object.assign(new Error("No microphone was found. Plug one in and call again."), { kind: "microphone" });
      }
      if (name === "NotReadableError") {
        throw Object.assign(new Error(
          "The microphone is in use by another program or could not be opened."), { kind: "microphone" });
      }
      throw Object.assign(new Error(`The microphone could not be opened (${name || error}).`), { kind: "microphone" });
    }
  }

  function failureText(cause, response) {
    const C = JsSIP.C.causes;
    const code = response && response.status_code ? ` (SIP ${response.status_code})` : "";
    switch (cause) {
      case C.AUTHENTICATION_ERROR:
      case C.REJECTED:
        return ["auth", `Asterisk refused the user name or password${code}. Check them and call again.`];
      case C.NOT_FOUND:
        return ["dial", `Asterisk has no "${phone.settings.dial}" in the [from-webrtc] dialplan${code}.`];
      case C.BUSY:
        return ["busy", `The agent is busy${code}. Try again in a moment.`];
      case C.UNAVAILABLE:
      case C.REQUEST_TIMEOUT:
        return ["unavailable", `The agent is not available right now${code}.`];
      case C.CONNECTION_ERROR:
        return ["connection", `The connection to Asterisk was lost.${certificateHint(phone.settings.wssUrl)}`];
      case C.USER_DENIED_MEDIA_ACCESS:
        return ["microphone", "Microphone access was refused."];
      case C.BAD_MEDIA_DESCRIPTION:
      case C.INCOMPATIBLE_SDP:
        return ["media", `Asterisk and this browser found no common audio codec${code}.`];
      case C.RTP_TIMEOUT:
        return ["ice", "The call's audio stopped arriving."];
      default:
        return ["call", `The call failed: ${cause}${code}.`];
    }
  }

  function stopMedia() {
    clearTimeout(mediaTimer);
    mediaTimer = null;
    if (phone.localStream) {
      phone.localStream.getTracks().forEach((track) => track.stop());
    }
    phone.localStream = null;
  }

  function finish(state, text) {
    stopMedia();
    const ua = phone.ua;
    phone.ua = phone.call = null;
    if (ua) ua.stop();
    setState(state, text);
    clearTimeout(pollTimer);
    pollTimer = setTimeout(() => poll(3), POLL_MS); // fetch the final transcript
  }

  function failMedia(text) {
    showError("ice", text);
    try {
      if (phone.call && !phone.call.isEnded()) phone.call.terminate();
    } catch (error) {
      // not sent yet (still gathering): stopping the user agent below drops it
    }
    finish("failed", "Call ended: no audio path");
  }

  function watchPeerConnection(pc) {
    pc.addEventListener("track", (event) => {
      phone.remoteStream = event.streams[0] || new MediaStream([event.track]);
      ui.remote.srcObject = phone.remoteStream;
    });
    pc.addEventListener("iceconnectionstatechange", () => {
      const state = pc.iceConnectionState;
      if (state === "failed") {
        failMedia("The audio connection (ICE) failed: the browser and Asterisk could not reach each other. " +
          "A firewall may block UDP, or a STUN/TURN server is needed or unreachable (webphone.ice_servers).");
      } else if ((state === "connected" || state === "completed") && !phone.mediaUp) {
        phone.mediaUp = true;
        clearTimeout(mediaTimer);
        setState("connected", "Connected");
        describeCodec(pc);
      }
    });
  }

  async function describeCodec(pc) {
    // The codec Asterisk chose from our offer (Opus when both sides have it, else G.711).
    for (let attempt = 0; attempt < 20 && !phone.codec; attempt += 1) {
      const stats = await pc.getStats();
      stats.forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio" && report.codecId) {
          const codec = stats.get(report.codecId);
          if (codec) phone.codec = `${codec.mimeType.replace("audio/", "")} ${codec.clockRate / 1000} kHz`;
        }
      });
      if (!phone.codec) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (phone.codec && phone.state === "connected") setState("connected", `Connected (${phone.codec})`);
  }

  async function startCall() {
    clearError();
    phone.codec = null;
    phone.remoteStream = null;
    phone.mediaUp = false;
    phone.muted = false;
    ui.mute.textContent = "Mute";
    ui.transcript.replaceChildren();
    const settings = phone.settings;
    const user = ui.username.value.trim();
    const password = ui.password.value;
    if (!user || !password) {
      showError("auth", "Enter the user name and password of your phone account.");
      return;
    }
    setState("connecting", "Opening the microphone…");
    try {
      phone.localStream = await microphone();
    } catch (error) {
      showError(error.kind || "microphone", error.message);
      setState("idle", "Not connected");
      return;
    }
    phone.session = crypto.randomUUID();
    setState("connecting", `Connecting to ${settings.wssUrl}…`);
    const host = wssHost(settings.wssUrl);
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(settings.wssUrl)],
      uri: `sip:${user}@${host}`,
      authorization_user: user,
      password,
      register: false,
      session_timers: false,
      user_agent: "AI bridge web phone",
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 4,
    });
    phone.ua = ua;
    let connected = false;
    ua.on("connected", () => {
      connected = true;
      if (phone.call) return;
      setState("connecting", "Calling the agent…");
      try {
        placeCall(ua, host);
      } catch (error) {
        // e.g. the browser rejects the STUN/TURN settings (a TURN URL without a credential)
        showError("settings", `The call could not be started: ${error.message}. Check webphone.ice_servers.`);
        finish("failed", "Call failed");
      }
    });
    ua.on("disconnected", () => {
      if (phone.ua !== ua) return;
      if (!connected) {
        showError("connection", `Could not connect to Asterisk at ${settings.wssUrl}. Check that it is ` +
          `running and reachable from this computer.${certificateHint(settings.wssUrl)}`);
        finish("failed", "Not connected");
      }
    });
    ua.start();
  }

  function placeCall(ua, host) {
    const settings = phone.settings;
    const call = ua.call(`sip:${settings.dial}@${host}`, {
      mediaStream: phone.localStream,
      extraHeaders: [`X-Bridge-Session: ${phone.session}`],
      pcConfig: {
        iceServers: settings.iceServers,
        iceTransportPolicy: settings.iceTransportPolicy,
        rtcpMuxPolicy: "require",
      },
    });
    phone.call = call;
    if (call.connection) watchPeerConnection(call.connection);
    call.on("peerconnection", (event) => watchPeerConnection(event.peerconnection));
    call.on("sdp", (event) => {
      if (event.originator === "local" && event.type === "offer" && settings.codecs.length) {
        event.sdp = offerOnly(event.sdp, settings.codecs);
      }
    });
    call.on("progress", () => setState("ringing", "Ringing…"));
    // ICE gathers addresses before the INVITE goes out, then checks them once Asterisk answers;
    // either step can hang (a dead TURN server, UDP blocked), so both are under one deadline.
    let candidates = 0;
    call.on("icecandidate", () => { candidates += 1; });
    clearTimeout(mediaTimer);
    mediaTimer = setTimeout(() => {
      if (phone.mediaUp) return;
      const seconds = settings.mediaTimeoutMs / 1000;
      failMedia(candidates === 0
        ? `No network path for audio was found in ${seconds} s (ICE gathered no candidates): the STUN/TURN ` +
          "server in webphone.ice_servers is unreachable, or this network blocks UDP."
        : `No audio path after ${seconds} s (ICE did not connect): a firewall may block UDP between this ` +
          "browser and Asterisk, or a STUN/TURN server is needed or unreachable.");
    }, settings.mediaTimeoutMs);
    call.on("accepted", () => {
      poll();
      if (!phone.mediaUp) setState("ringing", "Answered, connecting audio…");
    });
    call.on("failed", (event) => {
      if (phone.errorKind) return finish("failed", "Call failed");
      const [kind, text] = failureText(event.cause, event.message);
      showError(kind, text);
      finish("failed", "Call failed");
    });
    call.on("ended", (event) => {
      if (phone.errorKind) return finish("failed", "Call ended");
      const byAgent = event.originator === "remote";
      finish("ended", byAgent ? "The agent ended the call" : "Call ended");
    });
  }

  // Keep only the configured audio codecs (webphone.codecs, in that order of preference) in our
  // offer, plus DTMF events; e.g. ["PCMU"] spares Asterisk the Opus transcoding on a busy box.
  function offerOnly(sdp, codecs) {
    const wanted = codecs.map((name) => name.toLowerCase());
    const lines = sdp.split("\r\n");
    const names = {};
    for (const line of lines) {
      const match = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
      if (match) names[match[1]] = match[2].toLowerCase();
    }
    const keep = (pt) => wanted.includes(names[pt]) || names[pt] === "telephone-event";
    const rank = (pt) => (wanted.includes(names[pt]) ? wanted.indexOf(names[pt]) : wanted.length);
    return lines
      .map((line) => {
        const media = /^(m=audio \S+ \S+) (.*)$/.exec(line);
        if (!media) return line;
        const kept = media[2].split(" ").filter(keep).sort((a, b) => rank(a) - rank(b));
        return `${media[1]} ${kept.join(" ")}`;
      })
      .filter((line) => {
        const attribute = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)/.exec(line);
        return !attribute || keep(attribute[1]);
      })
      .join("\r\n");
  }

  function hangUp() {
    if (phone.call && !phone.call.isEnded()) phone.call.terminate();
    else finish("ended", "Call ended");
  }

  // Keypad digits as RFC 4733 events in the media (what Asterisk's WebRTC endpoints expect):
  // the agent's routing answers them as on a phone (e.g. 0 for a person).
  function sendDigit(digit) {
    if (!phone.call || phone.state !== "connected") return;
    phone.call.sendDTMF(digit, { transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833, duration: 160 });
  }

  function toggleMute() {
    if (!phone.call) return;
    phone.muted = !phone.muted;
    if (phone.muted) phone.call.mute({ audio: true });
    else phone.call.unmute({ audio: true });
    ui.mute.textContent = phone.muted ? "Unmute" : "Mute";
    ui.mute.setAttribute("aria-pressed", String(phone.muted));
  }

  // -- live transcript ------------------------------------------------------------------------

  function row(who, text, latency, extraClass) {
    const tr = document.createElement("tr");
    if (extraClass) tr.className = extraClass;
    for (const [value, cls] of [[who, "who"], [text, ""], [latency, "latency"]]) {
      const td = document.createElement("td");
      td.textContent = value;
      if (cls) td.className = cls;
      tr.append(td);
    }
    return tr;
  }

  function latencyText(latency) {
    if (!latency || latency.first_frame_out === undefined) return "";
    const stages = STAGES.filter(([key]) => key in latency).map(([key, name]) => `${name} ${latency[key]}`);
    return `${latency.first_frame_out} ms (${stages.join(", ")})`;
  }

  function render(view) {
    const rows = [];
    if (view.greeting) rows.push(row("Agent", view.greeting, ""));
    for (const turn of view.turns || []) {
      if (turn.caller) rows.push(row("You", turn.caller, ""));
      if (turn.agent) rows.push(row("Agent", turn.agent, latencyText(turn.latency_ms)));
    }
    const last = (view.turns || []).at(-1);
    if (view.speaking && (!last || last.agent !== view.speaking) && view.speaking !== view.greeting) {
      rows.push(row("Agent", view.speaking, last ? latencyText(last.latency_ms) : "", "speaking"));
    }
    ui.transcript.replaceChildren(...rows);
    phone.transcript = view;
  }

  async function poll(remaining) {
    clearTimeout(pollTimer);
    if (!phone.session) return;
    try {
      const response = await fetch(`/phone/calls/${phone.session}`, { cache: "no-store" });
      if (response.ok) render(await response.json());
    } catch (error) {
      // The bridge's web server may restart; the call itself does not depend on it.
    }
    const active = phone.call !== null;
    if (active || remaining > 0) {
      pollTimer = setTimeout(() => poll(active ? undefined : remaining - 1), POLL_MS);
    }
  }

  async function load() {
    try {
      const response = await fetch("/phone/settings.json", { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      phone.settings = await response.json();
      if (!phone.settings.wssUrl) {
        // Asterisk on the machine that served this page (the usual single-box install).
        const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
        phone.settings.wssUrl = `wss://${host}:${phone.settings.wssPort}/ws`;
      }
    } catch (error) {
      showError("settings", `The phone settings could not be loaded from the bridge (${error.message}).`);
      setState("unsupported", "Not available");
      return;
    }
    if (!window.RTCPeerConnection) {
      showError("unsupported", "This browser has no WebRTC: use a current Chrome, Chromium, Firefox or Safari.");
      setState("unsupported", "Not available");
      return;
    }
    ui.username.value = phone.settings.username;
    setState("idle", "Not connected");
    ui.call.addEventListener("click", startCall);
    ui.hangup.addEventListener("click", hangUp);
    ui.mute.addEventListener("click", toggleMute);
    ui.keys.forEach((key) => key.addEventListener("click", () => sendDigit(key.textContent)));
  }

  load();
})();
