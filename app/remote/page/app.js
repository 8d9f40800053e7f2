// SDXS Live's browser page: draw (mouse, finger, pen with pressure) or use the camera; the engine server paints.
// The protocol is app/remote/messages.py's: JSON text messages {"v": 1, "type": ...} and binary pictures
// ("SDX", a kind byte, a 4-byte big-endian header length, a JSON header, the payload, in parts of 60000 bytes).
// The drawing goes as PNG (lossless), one frame in flight: a new stroke waits only for the picture before it.
// The camera goes as a WebRTC video track; its pictures come back on the server's video track, shown in #returned.
"use strict";

const VERSION = 1, CHUNK = 60000, MAGIC = [83, 68, 88];  // "SDX"
const $ = (id) => document.getElementById(id);
const drawing = $("drawing"), picture = $("picture"), camera = $("camera"), returned = $("returned"), status = $("status");
const ink = drawing.getContext("2d"), shown = picture.getContext("2d");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";

// what a test (or a curious user, in the console) can read
const state = window.sdxs = { link: "new", pictures: 0, sent: 0, rtt: 0, latency: 0, lastSeq: 0, error: "", hello: null,
                              bytesUp: 0, bytesDown: 0, log: [],  // log: the newest pictures' timings (bench remote reads it)
                              videoFrames: 0 };  // videoFrames: frames of the returned video track shown

let pc = null, channel = null, dirty = true, inFlight = 0, seq = 0, msgId = 0, parts = [], partsId = -1;
let eraser = false, useCamera = false, stream = null, backoff = 500, lastHeard = 0, strokeAt = 0, sentStroke = [0, 0];

function clearDrawing() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, drawing.width, drawing.height);
  dirty = true;
}
clearDrawing();

// drawing: pointer events cover mouse, touch and pen; pressure widens a pen's line
let last = null;
function at(e) {
  const r = drawing.getBoundingClientRect();
  return { x: (e.clientX - r.left) * drawing.width / r.width, y: (e.clientY - r.top) * drawing.height / r.height,
           p: e.pointerType === "mouse" || !e.pressure ? 0.5 : e.pressure };
}
function line(a, b) {
  ink.strokeStyle = eraser ? "#fff" : "#000";
  ink.lineCap = "round";
  ink.lineWidth = Number($("brush").value) * (eraser ? 3 : 2 * b.p);
  ink.beginPath(); ink.moveTo(a.x, a.y); ink.lineTo(b.x, b.y); ink.stroke();
  dirty = true; strokeAt = strokeAt || performance.now();  // the first stroke not yet sent
}
drawing.addEventListener("pointerdown", (e) => { drawing.setPointerCapture(e.pointerId); last = at(e); line(last, last); e.preventDefault(); });
drawing.addEventListener("pointermove", (e) => {
  if (!last) return;
  for (const ev of (e.getCoalescedEvents ? e.getCoalescedEvents() : [e])) { const p = at(ev); line(last, p); last = p; }
  e.preventDefault();
});
for (const kind of ["pointerup", "pointercancel"]) drawing.addEventListener(kind, () => { last = null; });

// controls
function send(type, fields) { if (channel && channel.readyState === "open") channel.send(JSON.stringify({ v: VERSION, type, ...fields })); }
$("prompt").addEventListener("change", () => send("settings", { prompt: $("prompt").value }));
$("seed").addEventListener("change", () => send("settings", { seed: Math.max(0, Math.floor(Number($("seed").value) || 0)) }));
$("newseed").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2147483647); $("seed").dispatchEvent(new Event("change")); });
$("strength").addEventListener("input", () => send("settings", { strength: Number($("strength").value) }));
$("eraser").addEventListener("click", () => { eraser = !eraser; $("eraser").classList.toggle("on", eraser); });
$("clear").addEventListener("click", clearDrawing);
$("cam").addEventListener("click", async () => {
  useCamera = !useCamera;
  $("cam").classList.toggle("on", useCamera);
  if (useCamera) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 512 }, height: { ideal: 512 } }, audio: false });
    } catch (err) { say(`camera: ${err.message}`, true); useCamera = false; $("cam").classList.remove("on"); return; }
    camera.srcObject = stream; camera.hidden = false; drawing.hidden = true; camera.play();
  } else {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null; camera.hidden = true; drawing.hidden = false; dirty = true;
    returned.srcObject = null; returned.hidden = true; picture.hidden = false;
  }
  connect();  // a new connection with (or without) the camera's video track
});

function countShown() { state.videoFrames += 1; returned.requestVideoFrameCallback(countShown); }
if (returned.requestVideoFrameCallback) returned.requestVideoFrameCallback(countShown);

function say(text, bad = false) { status.textContent = text; status.classList.toggle("bad", bad); }

function showHello(hello) {
  state.hello = hello;
  const s = hello.settings || {};
  if (!$("prompt").value) $("prompt").value = s.prompt || "";
  $("seed").value = s.seed || 0;
  $("strength").value = s.strength ?? 1;
  const box = $("loras");
  box.textContent = "";
  for (const [name, weight] of Object.entries(hello.loras || {})) {
    const label = document.createElement("label"), input = document.createElement("input");
    Object.assign(input, { type: "range", min: -1, max: 2, step: 0.05, value: weight });
    input.addEventListener("input", () => send("settings", { loras: { [name]: Number(input.value) } }));
    label.append(name, input);
    box.append(label);
  }
}

// binary pictures
function pack(kind, header, payload) {
  const out = [], count = Math.max(1, Math.ceil(payload.length / CHUNK));
  msgId += 1;
  for (let i = 0; i < count; i++) {
    const head = new TextEncoder().encode(JSON.stringify({ ...header, id: msgId, part: i, parts: count }));
    const body = payload.subarray(i * CHUNK, (i + 1) * CHUNK);
    const buf = new Uint8Array(8 + head.length + body.length);
    buf.set(MAGIC, 0); buf[3] = kind.charCodeAt(0);
    new DataView(buf.buffer).setUint32(4, head.length);
    buf.set(head, 8); buf.set(body, 8 + head.length);
    out.push(buf);
  }
  return out;
}
async function onBinary(data) {
  state.bytesDown += data.byteLength;
  const buf = new Uint8Array(data), n = new DataView(data).getUint32(4);
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  if (header.part === 0) { parts = []; partsId = header.id; } else if (header.id !== partsId) return;
  parts.push(buf.subarray(8 + n));
  if (parts.length < header.parts) return;
  const kind = String.fromCharCode(buf[3]), blob = new Blob(parts, { type: header.format === "png" || kind === "S" ? "image/png" : "image/jpeg" });
  parts = [];
  if (kind !== "P") return;
  inFlight = 0;
  const bitmap = await createImageBitmap(blob);
  shown.drawImage(bitmap, 0, 0, picture.width, picture.height);  // shown as large as the drawing, whatever its size
  state.pictures += 1; state.lastSeq = header.seq || 0;
  if (header.t !== undefined && header.drawn !== false) {
    const now = performance.now();
    state.latency = now - header.t;
    state.log.push({ capture: state.latency, stroke: sentStroke[0] === header.seq && sentStroke[1] ? now - sentStroke[1] : null, engine: header.engine_ms ?? null });
    if (state.log.length > 1000) state.log.shift();
  }
}

// one frame in flight: the newest drawing goes when the last picture is back (or after 3 s without it)
async function pump() {
  if (!useCamera && dirty && channel && channel.readyState === "open" && (!inFlight || performance.now() - inFlight > 3000)) {
    dirty = false; inFlight = performance.now(); seq += 1;
    sentStroke = [seq, strokeAt]; strokeAt = 0;
    const grabbed = performance.now();  // capture: the drawing as it is now, before its PNG is made
    const blob = await new Promise((done) => drawing.toBlob(done, "image/png"));
    const payload = new Uint8Array(await blob.arrayBuffer());
    for (const part of pack("F", { seq, drawn: true, t: grabbed }, payload)) { channel.send(part); state.bytesUp += part.length; }
    state.sent += 1;
  }
  requestAnimationFrame(pump);
}
requestAnimationFrame(pump);

setInterval(() => {
  if (state.link !== "live") return;
  send("ping", { t: performance.now() });
  if (performance.now() - lastHeard > 5000) { say("link lost: reconnecting…", true); connect(); }
  else say(`live · round trip ${state.rtt.toFixed(1)} ms · ${state.pictures} pictures${useCamera ? " · camera" : ""}`);
}, 1000);

async function connect() {
  if (pc) { const old = pc; pc = null; channel = null; old.close(); }
  state.link = "connecting"; inFlight = 0; dirty = true;
  const mine = pc = new RTCPeerConnection({ iceServers: [] });
  const ch = mine.createDataChannel("sdxs");
  ch.binaryType = "arraybuffer";
  if (useCamera && stream) stream.getVideoTracks().forEach((t) => mine.addTrack(t, stream));
  mine.ontrack = (e) => {  // the camera's pictures, on the server's video track
    if (pc !== mine || e.track.kind !== "video") return;
    returned.srcObject = new MediaStream([e.track]); returned.hidden = false; picture.hidden = true; returned.play();
  };
  ch.onopen = () => { if (pc === mine) { channel = ch; state.link = "live"; backoff = 500; lastHeard = performance.now(); } };
  ch.onclose = () => { if (pc === mine) { state.link = "lost"; say("link lost: reconnecting…", true); setTimeout(connect, backoff); backoff = Math.min(8000, backoff * 2); } };
  ch.onmessage = (e) => {
    lastHeard = performance.now();
    if (typeof e.data !== "string") { onBinary(e.data); return; }
    const m = JSON.parse(e.data);
    if (m.type === "hello") showHello(m);
    else if (m.type === "pong") state.rtt = performance.now() - m.t;
    else if (m.type === "picture") state.pictures += 1;  // one sent on the video track
    else if (m.type === "error") { state.error = m.text; say(m.text, true); inFlight = 0; }
  };
  try {
    await mine.setLocalDescription(await mine.createOffer());
    await new Promise((done) => {  // the whole offer, candidates included (no trickle)
      if (mine.iceGatheringState === "complete") return done();
      mine.addEventListener("icegatheringstatechange", () => mine.iceGatheringState === "complete" && done());
      setTimeout(done, 2000);
    });
    const r = await fetch("offer", { method: "POST", headers: { "Content-Type": "application/json", "X-SDXS-Token": token },
                                     body: JSON.stringify({ sdp: mine.localDescription.sdp, type: "offer" }) });
    const text = await r.text();
    if (!r.ok) {
      state.link = r.status === 401 ? "refused" : "busy"; state.error = text.trim();
      say(r.status === 401 ? "wrong or missing token: open the URL serve-engine printed (…/#token=…)" : text.trim(), true);
      if (r.status !== 401) setTimeout(() => pc === mine && connect(), 3000);
      return;
    }
    await mine.setRemoteDescription(JSON.parse(text));
  } catch (err) {
    say(`cannot reach the engine: ${err.message}; retrying`, true);
    setTimeout(() => pc === mine && connect(), backoff); backoff = Math.min(8000, backoff * 2);
  }
}
connect();
