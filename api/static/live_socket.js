// A websocket that reconnects by itself (with back-off) and reports its state.
"use strict";
function liveSocket(path, onMessage, onState) {
  let delay = 1000;
  let socket = null;
  let retry = null; // the pending reconnection, if any
  function connect() {
    retry = null;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const current = new WebSocket(scheme + "//" + location.host + path);
    socket = current;
    onState("connecting");
    current.onopen = () => { delay = 1000; onState("live"); };
    current.onmessage = (event) => onMessage(JSON.parse(event.data));
    current.onclose = (event) => {
      if (socket !== current) return; // replaced by moveTo: nothing was lost
      if (event.code === 4404) { onState("not-found"); return; }
      onState("reconnecting");
      retry = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
  return {
    close: () => socket && socket.close(),
    // Switch to another path at once (the same board in another language, say); the old socket says no more.
    moveTo: (newPath) => {
      path = newPath;
      const old = socket;
      if (retry !== null) clearTimeout(retry);
      delay = 1000;
      connect();
      if (old) { old.onmessage = null; old.close(); }
    },
  };
}
