// The safety notices page (/console/notices): the send form and the 已收到/已落实 buttons post
// JSON to /v1/notices (the session cookie is honoured for JSON only: a cross-site form cannot
// send it). A refused notice shows the reasons and keeps what was typed.
(function () {
  "use strict";
  const prefix = (window.YJ && window.YJ.prefix) || "/console";

  async function post(url, body) {
    const r = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    return {status: r.status, data};
  }

  function list(text) {
    return (text || "").split(/[,，、]/).map(s => s.trim()).filter(Boolean);
  }

  function showError(form, text) {
    let p = document.getElementById("notice-error");
    if (!p) {
      p = document.createElement("p");
      p.id = "notice-error";
      p.className = "err";
      p.setAttribute("role", "alert");
      form.prepend(p);
    }
    p.textContent = text;
  }

  const form = document.getElementById("notice-form");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const body = {title: f.get("title") || "", body: f.get("body") || "",
        kind: f.get("kind") || "安全提示", severity: f.get("severity") || "warning",
        link: (f.get("link") || "").trim(),
        to: {tags: list(f.get("tags")), towns: list(f.get("towns")),
             enterprises: list(f.get("enterprises"))}};
      const {status, data} = await post("/v1/notices", body);
      if (status === 202) {
        location.href = `${prefix}/notices?sent=${encodeURIComponent(data.notice)}`;
      } else {
        showError(form, data.error || `HTTP ${status}`);
      }
    });
  }

  for (const ack of document.querySelectorAll("form.notice-ack")) {
    ack.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const kind = (ev.submitter && ev.submitter.value) || "received";
      const {status, data} = await post(`/v1/notices/${encodeURIComponent(ack.dataset.notice)}/ack`,
                                        {ack: kind});
      if (status === 202) {
        location.href = `${prefix}/notices?acked=${encodeURIComponent(ack.dataset.notice)}`;
      } else {
        showError(ack, data.error || `HTTP ${status}`);
      }
    });
  }
})();
