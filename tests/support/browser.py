"""A real headless Chromium (Debian's) on the bridge's web phone page, driven by Playwright.

The microphone is Chromium's fake capture device playing a WAV file once (%noloop), so the
caller's words are real audio going through getUserMedia, Opus and DTLS-SRTP like a person's.
What the caller hears is tapped off the remote WebRTC track with Web Audio: a channel merger
puts the microphone on channel 0 and the agent on channel 1 of one ScriptProcessor, so both are
sample-aligned on the browser's own clock (used for the browser's voice-to-voice benchmark).
"""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from types import TracebackType
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from bridge.routing.messages import write_wav as save_wav

CHROMIUM = Path("/usr/bin/chromium")
TAP_RATE = 16000
# The closed network here refuses Chromium's background connections; these keep it quiet.
QUIET_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # Asterisk listens on loopback in the tests: let ICE use loopback candidates.
    "--allow-loopback-in-peer-connection",
]

_TAP_SCRIPT = """
async (rate) => {
  const phone = window.phone;
  const ctx = new AudioContext({ sampleRate: rate });
  await ctx.resume();
  const merger = ctx.createChannelMerger(2);
  ctx.createMediaStreamSource(phone.localStream).connect(merger, 0, 0);
  ctx.createMediaStreamSource(phone.remoteStream).connect(merger, 0, 1);
  const processor = ctx.createScriptProcessor(4096, 2, 2);
  const chunks = [[], []];
  processor.onaudioprocess = (event) => {
    for (let channel = 0; channel < 2; channel += 1) {
      const data = event.inputBuffer.getChannelData(channel);
      const pcm = new Int16Array(data.length);
      for (let i = 0; i < data.length; i += 1) pcm[i] = Math.max(-1, Math.min(1, data[i])) * 32767;
      chunks[channel].push(pcm);
    }
    const out = event.outputBuffer;
    for (let channel = 0; channel < out.numberOfChannels; channel += 1) out.getChannelData(channel).fill(0);
  };
  merger.connect(processor);
  processor.connect(ctx.destination);
  window.__tap = { ctx, chunks, processor };
}
"""

_TAP_TAKE = """
() => {
  const encode = (parts) => {
    const total = parts.reduce((sum, part) => sum + part.length, 0);
    const all = new Int16Array(total);
    let offset = 0;
    for (const part of parts) { all.set(part, offset); offset += part.length; }
    const bytes = new Uint8Array(all.buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(text);
  };
  const tap = window.__tap;
  tap.processor.disconnect();
  return [encode(tap.chunks[0]), encode(tap.chunks[1])];
}
"""


def write_wav(path: Path, pcm: bytes, rate: int) -> Path:
    save_wav(path, pcm, rate)
    return path


class BrowserPhone:
    """One Chromium with one web phone page. `microphone=None` gives it no microphone at all."""

    def __init__(
        self, url: str, microphone: Path | None, allow_microphone: bool = True, trust_self_signed: bool = True
    ) -> None:
        if not CHROMIUM.exists() or shutil.which("chromium") is None:
            raise RuntimeError("Debian's chromium is not installed (scripts/bootstrap.sh with BOOTSTRAP_DEV=1)")
        self.url = url
        self.microphone = microphone
        self.allow_microphone = allow_microphone
        self.trust_self_signed = trust_self_signed
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self.page: Page | None = None
        self.console: list[str] = []

    async def __aenter__(self) -> BrowserPhone:
        flags = list(QUIET_FLAGS)
        if self.microphone is not None:
            flags.append("--use-fake-device-for-media-stream")
            flags.append(f"--use-file-for-fake-audio-capture={self.microphone}%noloop")
        if self.allow_microphone:
            flags.append("--use-fake-ui-for-media-stream")  # answers the permission prompt with "allow"
        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=flags)
        # The tests' Asterisk has a self-signed certificate, as a fresh install does; a person
        # accepts it once in the browser, a test tells the browser to.
        self._context = await self._browser.new_context(ignore_https_errors=self.trust_self_signed)
        self.page = await self._context.new_page()
        self.page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        self.page.on("pageerror", lambda error: self.console.append(f"uncaught: {error}"))
        await self.page.goto(self.url)
        await self.page.wait_for_function("window.phone && window.phone.state !== 'loading'", timeout=10_000)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    @property
    def _page(self) -> Page:
        assert self.page is not None, "use BrowserPhone as an async context manager"
        return self.page

    async def call(self, username: str, password: str) -> None:
        await self._page.fill("#username", username)
        await self._page.fill("#password", password)
        await self._page.click("#call")

    async def hang_up(self) -> None:
        await self._page.click("#hangup")

    async def wait_for_state(self, *states: str, timeout: float = 20.0) -> str:
        try:
            handle = await self._page.wait_for_function(
                "(states) => states.includes(window.phone.state) && window.phone.state",
                arg=list(states),
                timeout=timeout * 1000,
            )
        except PlaywrightTimeout:
            raise AssertionError(
                f"the page never reached {states}: {await self.phone_state()}\n" + "\n".join(self.console[-30:])
            ) from None
        return str(await handle.json_value())

    async def wait_until(self, expression: str, timeout: float = 20.0) -> None:
        """Wait for a JavaScript condition on the page; on time-out say what the page showed."""
        try:
            await self._page.wait_for_function(expression, timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise AssertionError(
                f"never true: {expression}\n{await self.phone_state()}\n" + "\n".join(self.console[-30:])
            ) from None

    async def wait_for_remote_audio(self, timeout: float = 20.0) -> None:
        await self.wait_until("window.phone.remoteStream !== null", timeout)

    async def click(self, selector: str) -> None:
        await self._page.click(selector)

    async def transcript_rows(self) -> list[str]:
        return await self._page.locator("#transcript tbody tr").all_inner_texts()

    async def listen(self, seconds: float) -> tuple[bytes, bytes]:
        """Record `seconds` of microphone and agent audio (the wait is the recording's length)."""
        await self.start_tap()
        await self._page.wait_for_timeout(seconds * 1000)
        return await self.take_tap()

    async def phone_state(self) -> dict[str, Any]:
        state: dict[str, Any] = await self._page.evaluate(
            "() => ({state: phone.state, error: phone.error, errorKind: phone.errorKind, codec: phone.codec,"
            " session: phone.session, transcript: phone.transcript || null,"
            " status: document.querySelector('#status').textContent,"
            " shownError: document.querySelector('#error').textContent})"
        )
        return state

    async def start_tap(self) -> None:
        """Start recording the microphone (channel 0) and the agent (channel 1) from now on."""
        await self._page.evaluate(_TAP_SCRIPT, TAP_RATE)

    async def take_tap(self) -> tuple[bytes, bytes]:
        """Stop recording: (microphone, agent) as 16-bit PCM at TAP_RATE, sample-aligned."""
        mic, agent = await self._page.evaluate(_TAP_TAKE)
        return base64.b64decode(mic), base64.b64decode(agent)

    async def screenshot(self, path: Path) -> None:
        await self._page.screenshot(path=str(path), full_page=True)
