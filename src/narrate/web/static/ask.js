// "Ask about this dataset/model": answered by the optional LLM from stored summaries only
// (profile, evaluation, importances, narratives), citing them. Says what is sent, and
// falls back to the deterministic text with a note when the LLM fails.
(function () {
  var box = document.querySelector("section.ask[data-ask-url]");
  if (!box) return;
  var call = window.narrate.call;
  var status = document.getElementById("ask-status");
  var form = document.getElementById("ask-form");

  function li(text) { var e = document.createElement("li"); e.textContent = text; return e; }

  call("GET", "/api/v1/assistant/status").then(function (r) {
    if (r.status !== 200) { status.textContent = "The assistant's status could not be read."; return; }
    if (r.body.llm === "off") {
      status.textContent = "The language model is off, so questions cannot be answered here; every page still explains itself without it. An admin can point Narrate at a local or hosted model (see docs/assistant.md).";
      return;
    }
    status.textContent = "Answered by " + (r.body.model || "the configured language model") + " from this " + box.dataset.askWhat +
      "'s stored summaries (profile, evaluation, importances, narratives), which it must cite. " +
      (r.body.sends_rows ? "An admin allowed sending some raw rows too." : "No raw rows are sent.") +
      (r.body.llm === "breaker_open" ? " It failed several times just now, so answers may fall back to the built-in text for a minute." : "");
    form.hidden = false;
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var err = document.getElementById("ask-error");
    err.hidden = true;
    var button = form.querySelector("button");
    button.disabled = true;
    button.textContent = "Asking…";
    call("POST", box.dataset.askUrl, { question: document.getElementById("ask-question").value }).then(function (r) {
      button.disabled = false;
      button.textContent = "Ask";
      if (r.status !== 200) {
        var e = r.body && r.body.error;
        err.textContent = (e && (e.message + (e.hint ? " " + e.hint : ""))) || "The question could not be answered.";
        err.hidden = false;
        return;
      }
      var b = r.body;
      document.getElementById("ask-answer").hidden = false;
      document.getElementById("ask-text").textContent = b.answer;
      var note = document.getElementById("ask-note");
      note.hidden = !b.note;
      note.textContent = b.note ? b.note : "";
      var list = document.getElementById("ask-citations");
      list.textContent = "";
      b.citations.forEach(function (c) { list.appendChild(li("[" + c.id + "] " + c.name + " = " + c.value + " (" + c.source + ")")); });
      if (!b.citations.length) list.appendChild(li("No stored fact was cited."));
      document.getElementById("ask-sent").textContent = "Sent: " + b.sent.kinds.join(", ").replace(/_/g, " ") + "; " + b.sent.facts + " facts; " + b.sent.raw_rows + " raw rows.";
    });
  });
})();
