// A websocket that reconnects by itself (with back-off) and reports its state.
"use strict";
function liveSocket(path, onMessage, onState) {
  let delay = 1000;
  let socket = null;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + path);
    onState("connecting");
    socket.onopen = () => { delay = 1000; onState("live"); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (event.code === 4404) { onState("not-found"); return; }
      onState("reconnecting");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
  return { close: () => socket && socket.close() };
}
