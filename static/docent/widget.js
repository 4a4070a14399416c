/* Docent help widget. Embed with:
 *   <script src="https://DOCENT/static/docent/widget.js" data-widget="PUBLIC_ID" async></script>
 * Everything lives in a shadow root, so the host page's CSS cannot reach it. The page never
 * holds an API key: the widget gets a short-lived session token bound to this origin.
 * HTML inserted below was rendered and sanitised by the server (nh3); all else is text.
 * The admin shows a live preview with data-preview="ELEMENT-ID": the same look, drawn into
 * that element from the config it is sent (a "docent:preview" event), with no network. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !(script.dataset.widget || script.dataset.preview)) return;
  var preview = script.dataset.preview ? document.getElementById(script.dataset.preview) : null;
  if (script.dataset.preview && !preview) return;
  var id = script.dataset.widget || "preview";
  var base = new URL(script.src).origin;
  var api = base + "/widget/api/" + encodeURIComponent(id);
  var store = "docent:" + id + ":";
  var session = null, config = null, controller = null, files = [], ready = null, pending = null;

  var host = document.createElement("div");
  host.setAttribute("data-docent-widget", id);
  host.style.cssText = preview ? "all:initial;display:block;position:relative;" : "all:initial;position:fixed;z-index:2147483000;bottom:20px;right:20px;";
  var root = host.attachShadow({ mode: "open" });
  var css =
    ":host{all:initial}.wrap{--c:#3056d3}*{box-sizing:border-box;font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;line-height:1.45;color:#1d2330}" +
    ".launcher{width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;color:#fff;font-size:24px;box-shadow:0 4px 14px rgba(0,0,0,.25);background:var(--c)}" +
    ".panel{position:absolute;bottom:70px;right:0;width:min(380px,calc(100vw - 40px));height:min(560px,calc(100vh - 110px));background:#fff;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden}" +
    ".left .panel{right:auto;left:0}.panel[hidden]{display:none}" +
    "header{background:var(--c);color:#fff;padding:10px 12px;display:flex;align-items:center;gap:8px}header *{color:#fff}header strong{flex:1}" +
    "header button{background:transparent;border:0;cursor:pointer;font-size:13px;padding:2px 6px}" +
    ".log{flex:1;overflow:auto;padding:12px;display:flex;flex-direction:column;gap:10px}" +
    ".m{max-width:88%;padding:8px 11px;border-radius:12px;background:#f2f4f7;overflow-wrap:anywhere}.m.user{align-self:flex-end;background:var(--c);color:#fff}.m.user *{color:#fff}" +
    ".m p{margin:0 0 6px}.m p:last-child{margin:0}.m pre{white-space:pre-wrap;background:#e9ecf1;padding:6px;border-radius:6px}" +
    ".m a{color:var(--c)}.m a.cite{font-size:11px;vertical-align:super;text-decoration:none}" +
    ".m .outside-host{font-size:11px;color:#666;margin-left:2px}" +
    ".src{font-size:12px;color:#667085;margin:0;padding:0;list-style:none;display:flex;flex-wrap:wrap;gap:4px}.src .n{color:#667085}.src a{color:#475467;text-decoration:none;border:1px solid #e4e7ec;border-radius:10px;padding:1px 8px;display:inline-block;max-width:100%;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}" +
    ".srcs{align-self:stretch}.srcs details{font-size:12px;color:#667085;margin-top:4px}.srcs summary{cursor:pointer}.srcs details ul{margin:4px 0 0 16px;padding:0}.srcs details a{color:#667085}" +
    ".peek{border-left:3px solid var(--c);background:#f9fafb;padding:6px 9px;margin-top:6px;font-size:13px;border-radius:4px}.peek p{margin:0 0 4px}.peek strong{font-size:12px}.peek a{font-size:12px}" +
    ".note{font-size:12px;color:#667085;text-align:center}.err{color:#b42318;font-size:13px}" +
    ".starters{display:flex;flex-wrap:wrap;gap:6px}.starters button{border:1px solid var(--c);color:var(--c);background:#fff;border-radius:14px;padding:4px 10px;cursor:pointer}" +
    "form{border-top:1px solid #e4e7ec;padding:8px;display:flex;gap:6px;align-items:flex-end}" +
    "textarea{flex:1;resize:none;border:1px solid #d0d5dd;border-radius:8px;padding:7px;min-height:38px;max-height:110px}" +
    "form button{border:0;border-radius:8px;background:var(--c);color:#fff;padding:8px 12px;cursor:pointer}form button[hidden]{display:none}" +
    "form[hidden]{display:none}.m code,.m pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}" +
    ".m table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%;margin:4px 0}.m th,.m td{border:1px solid #d0d5dd;padding:2px 6px;text-align:left}" +
    ".m :not(pre)>code{background:#e9ecf1;border-radius:4px;padding:0 3px}header svg{width:16px;height:16px;vertical-align:-3px}" +
    ":focus-visible{outline:2px solid var(--c);outline-offset:2px}" +
    // Phones: the panel takes the whole screen, like an app's help sheet.
    "@media (max-width:480px){.panel{position:fixed;top:0;left:0;right:0;bottom:0;width:100vw;height:100vh;height:100dvh;border-radius:0}}" +
    "form button.attach{background:transparent;color:#475467;padding:8px}.tray{display:flex;gap:4px;padding:0 8px}.tray img{height:40px;border-radius:4px;border:1px solid #d0d5dd}" +
    ".rate{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin-top:-4px}.rate button{display:inline-flex;background:#fff;border:1px solid #d0d5dd;border-radius:8px;padding:3px 7px;cursor:pointer;color:#475467}" +
    ".rate button *{color:inherit}.rate svg{width:16px;height:16px}.rate button[aria-pressed=true]{background:var(--c);border-color:var(--c);color:#fff}.rate .thanks{font-size:12px;color:#667085}" +
    // The admin's preview: the panel and launcher in the page's flow, whatever the screen.
    ".wrap.preview{display:flex;flex-direction:column;align-items:flex-end;gap:14px}.wrap.preview.left{align-items:flex-start}" +
    ".preview .panel{position:relative;top:auto;right:auto;bottom:auto;left:auto;width:min(380px,100%);height:480px;border-radius:14px}";
  var markup =
    '<div class="wrap"><div class="panel" hidden role="dialog" aria-label="Help">' +
    '<header><strong class="title">Help</strong><button class="new" type="button" title="New conversation">New</button>' +
    '<button class="close" type="button" aria-label="Close help" title="Close"><svg viewBox="0 0 24 24" aria-hidden="true">' +
    '<path fill="none" stroke="currentColor" stroke-width="2.5" stroke-linecap="round" d="M6 6l12 12M18 6L6 18"/></svg></button></header>' +
    '<div class="log" aria-live="polite"></div><div class="tray"></div>' +
    '<form><button class="attach" type="button" aria-label="Attach a screenshot" title="Attach a screenshot" hidden>' +
    '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path fill="none" stroke="currentColor" stroke-width="2" ' +
    'stroke-linecap="round" stroke-linejoin="round" d="M21 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.5 3.5 0 0 1 5 5l-9 9a2 2 0 0 1-3-3l8.5-8.5"/></svg>' +
    '</button><input type="file" accept="image/*" multiple hidden aria-label="Screenshots to attach">' +
    '<textarea rows="1" placeholder="Ask a question…" aria-label="Your question"></textarea>' +
    '<button class="send" type="submit">Send</button><button class="stop" type="button" hidden>Stop</button></form></div>' +
    '<button class="launcher" type="button" aria-label="Open help" aria-expanded="false">?</button></div>';
  // A constructed style sheet, where the browser has them: a host page's (or the admin's)
  // Content-Security-Policy may refuse an inline <style>, but not these.
  try {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
    root.adoptedStyleSheets = [sheet];
    root.innerHTML = markup;
  } catch (e) {
    root.innerHTML = "<style>" + css + "</style>" + markup;
  }
  var $ = function (s) { return root.querySelector(s); };
  var wrap = $(".wrap"), panel = $(".panel"), log = $(".log"), input = $("textarea"), form = $("form");
  var sendBtn = $(".send"), stopBtn = $(".stop"), tray = $(".tray"), attach = $(".attach");

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function note(text, cls) { var n = el("p", cls || "note", text); log.appendChild(n); log.scrollTop = log.scrollHeight; return n; }
  function get(key) { try { return localStorage.getItem(store + key) || ""; } catch (e) { return ""; } }
  function put(key, value) { try { value ? localStorage.setItem(store + key, value) : localStorage.removeItem(store + key); } catch (e) { /* storage off */ } }

  function startSession() {
    return fetch(api + "/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ visitor: get("visitor") }) })
      .then(function (r) { return r.json().then(function (b) { if (!r.ok) throw new Error(b.error || "unavailable"); return b; }); })
      .then(function (b) {
        session = b.token;
        config = b.config;
        put("visitor", b.visitor);
        setTimeout(function () { session = null; }, (b.expires_in - 60) * 1000);
        return b;
      });
  }
  function ensureSession() { return session ? Promise.resolve() : startSession(); }

  // One chip per cited document (in citation order); the rest behind "N more passages read".
  function sources(citations) {
    var box = el("div", "srcs"), ol = el("ol", "src");
    box.setAttribute("aria-label", "Sources");
    citations.cited.forEach(function (s) {
      var li = el("li"), a = el("a");
      a.appendChild(el("span", "n", s.numbers.map(function (n) { return "[" + n + "]"; }).join("")));
      a.appendChild(document.createTextNode(" "));
      a.appendChild(el("span", "name", s.document));
      if (s.pages.length) a.appendChild(document.createTextNode(", p. " + s.pages.join(", ")));
      a.href = s.url; a.title = s.excerpt || s.document; outward(a);
      li.appendChild(a); ol.appendChild(li);
    });
    if (citations.cited.length) box.appendChild(ol);
    if (citations.more.length) {
      var details = el("details"), ul = el("ul"), n = citations.more_passages;
      details.appendChild(el("summary", "", n + " more passage" + (n === 1 ? "" : "s") + " read"));
      citations.more.forEach(function (s) {
        var li = el("li"), a = el("a", "", s.document + (s.pages.length ? ", p. " + s.pages.join(", ") : ""));
        a.href = s.url; outward(a); li.appendChild(a); ul.appendChild(li);
      });
      details.appendChild(ul);
      box.appendChild(details);
    }
    return box;
  }
  // [n] opens the passage in a panel under the answer, with a link to its page.
  function peek(bubble, link) {
    var old = bubble.querySelector(".peek");
    if (old) { old.remove(); if (old.dataset.n === link.dataset.source) return; }
    var p = (bubble._passages || []).filter(function (x) { return String(x.number) === link.dataset.source; })[0];
    if (!p) return;
    var box = el("div", "peek"), open = el("a", "", "Open the page");
    box.dataset.n = link.dataset.source;
    box.setAttribute("role", "note");
    box.appendChild(el("strong", "", "[" + p.number + "] " + p.document + (p.pages.length ? ", p. " + p.pages[0] : "")));
    box.appendChild(el("p", "", p.excerpt));
    open.href = p.url; outward(open);
    box.appendChild(open);
    bubble.appendChild(box);
    open.focus();
  }
  // Links open in a new tab and tell the target nothing about the page they came from.
  function outward(a) { a.target = "_blank"; a.rel = "noopener noreferrer nofollow"; }
  function setAnswer(node, html) {
    node.innerHTML = html; // sanitised by the server
    node.querySelectorAll("a").forEach(function (a) {
      outward(a);
      if (a.classList.contains("cite")) a.addEventListener("click", function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey || !node._passages) return;
        e.preventDefault(); peek(node, a);
      });
    });
  }
  function answerBubble(html, passages, citations) {
    var m = el("div", "m bot");
    m._passages = passages;
    setAnswer(m, html);
    log.appendChild(m);
    if (citations && (citations.cited.length || citations.more.length)) log.appendChild(sources(citations));
    return m;
  }
  // Thumbs up / down under a finished answer; a second click changes the vote.
  var THUMBS = [
    [1, "Helpful", "M7 10v11H3V10h4zm0 0l4-8a3 3 0 0 1 3 3v4h5.5a2 2 0 0 1 2 2.3l-1.4 8A2 2 0 0 1 18.1 21H7"],
    [-1, "Not helpful", "M17 14V3h4v11h-4zm0 0l-4 8a3 3 0 0 1-3-3v-4H4.5a2 2 0 0 1-2-2.3l1.4-8A2 2 0 0 1 5.9 3H17"],
  ];
  function icon(d) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg"), path = document.createElementNS(svg.namespaceURI, "path");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("aria-hidden", "true");
    path.setAttribute("fill", "none"); path.setAttribute("stroke", "currentColor"); path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round"); path.setAttribute("stroke-linejoin", "round"); path.setAttribute("d", d);
    svg.appendChild(path);
    return svg;
  }
  function rateBar(messageId, rating) {
    var bar = el("div", "rate"), thanks = el("span", "thanks", rating ? "Thanks for the feedback" : "Was this helpful?");
    bar.setAttribute("role", "group"); bar.setAttribute("aria-label", "Rate this answer");
    THUMBS.forEach(function (t) {
      var b = el("button");
      b.type = "button"; b.dataset.rating = t[0]; b.title = t[1];
      b.setAttribute("aria-label", t[1]); b.setAttribute("aria-pressed", String(rating === t[0]));
      b.appendChild(icon(t[2]));
      b.addEventListener("click", function () { rate(bar, thanks, messageId, t[0]); });
      bar.appendChild(b);
    });
    thanks.setAttribute("aria-live", "polite");
    bar.appendChild(thanks);
    return bar;
  }
  function rate(bar, thanks, messageId, rating) {
    var body = JSON.stringify({ rating: rating });
    function send() {
      return fetch(api + "/messages/" + encodeURIComponent(messageId) + "/feedback", {
        method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + session }, body: body,
      });
    }
    var saved = preview ? Promise.resolve() : ensureSession().then(send).then(function (r) {
      if (r.status !== 401) return r;
      session = null;  // expired: one new session, one more try
      return startSession().then(send);
    }).then(function (r) { if (!r.ok) throw new Error(); });
    saved.then(function () {
      bar.querySelectorAll("button").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.rating === String(rating))); });
      thanks.textContent = "Thanks for the feedback";
    }).catch(function () { thanks.textContent = "Your rating could not be saved. Please try again."; });
  }
  function greet() {
    log.textContent = "";
    note(config.greeting, "m bot");
    if (config.starters.length) {
      var box = el("div", "starters");
      config.starters.forEach(function (q) {
        var b = el("button", "", q); b.type = "button";
        b.addEventListener("click", function () { box.remove(); ask(q); });
        box.appendChild(b);
      });
      log.appendChild(box);
    }
  }
  function restore() {
    var conversation = get("conversation");
    if (!conversation) return greet();
    return fetch(api + "/conversations/" + encodeURIComponent(conversation), { headers: { Authorization: "Bearer " + session } })
      .then(function (r) { if (!r.ok) throw new Error(); return r.json(); })
      .then(function (b) {
        log.textContent = "";
        b.messages.forEach(function (m) {
          if (m.role === "user") log.appendChild(el("div", "m user", m.text));
          else {
            answerBubble(m.html, m.sources, m.citations);
            if (m.status === "complete") log.appendChild(rateBar(m.id, m.rating));
          }
        });
        log.scrollTop = log.scrollHeight;
      })
      .catch(function () { put("conversation", ""); greet(); });
  }

  function readImages() {
    return Promise.all(files.map(function (f) {
      return new Promise(function (ok, fail) { var r = new FileReader(); r.onload = function () { ok(r.result); }; r.onerror = fail; r.readAsDataURL(f); });
    }));
  }
  function addFiles(list) {
    if (!config || !config.screenshots) return;
    Array.prototype.forEach.call(list, function (f) { if (f.type.indexOf("image/") === 0 && files.length < 4) files.push(f); });
    tray.textContent = "";
    files.forEach(function (f) { var i = el("img"); i.alt = "screenshot"; i.src = URL.createObjectURL(f); tray.appendChild(i); });
  }

  function ask(question) {
    // Asked before the first session answered: asked as soon as it does, not dropped (the
    // latest one, if the visitor asked again meanwhile).
    if (!config && ready && !preview) {
      if (pending === null) ready.then(function () { var q = pending; pending = null; if (config) ask(q); });
      pending = question;
      return;
    }
    if (!config || preview) return;  // refused on this site, or the admin's preview: no one to ask
    question = question.trim();
    if (!question || controller) return;
    if (question.length > config.max_chars) { note("Please keep questions under " + config.max_chars + " characters.", "err"); return; }
    log.appendChild(el("div", "m user", question));
    var bubble = el("div", "m bot", "…"), raw = "", citations = null, done = null;
    log.appendChild(bubble);
    input.value = "";
    controller = new AbortController();
    sendBtn.hidden = true; stopBtn.hidden = false;
    ensureSession().then(readImages).then(function (images) {
      files = []; tray.textContent = "";
      return fetch(api + "/chat", {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", Authorization: "Bearer " + session },
        body: JSON.stringify({ question: question, conversation: get("conversation"), images: images }),
      });
    }).then(function (r) {
      if (r.status === 429) { throw new Error("You have reached today's limit of questions. Please come back tomorrow."); }
      if (r.status === 401) { session = null; }
      if (!r.ok) return r.json().then(function (b) { throw new Error(b.error || "Something went wrong."); });
      var reader = r.body.getReader(), decoder = new TextDecoder(), buffer = "";
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return;
          buffer += decoder.decode(chunk.value, { stream: true });
          var cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            var frame = buffer.slice(0, cut), kind = "message", data = [];
            buffer = buffer.slice(cut + 2);
            frame.split("\n").forEach(function (line) {
              if (line.indexOf("event:") === 0) kind = line.slice(6).trim();
              else if (line.indexOf("data:") === 0) data.push(line.slice(5).trim());
            });
            if (!data.length) continue;
            var d = JSON.parse(data.join("\n"));
            if (kind === "conversation") put("conversation", d.id);
            else if (kind === "sources") bubble._passages = d.sources;
            else if (kind === "citations") citations = d;
            else if (kind === "status" && d.message && !raw) bubble.textContent = d.message;
            else if (kind === "delta") raw += d.text;  // shown rendered, from the html events
            else if (kind === "html") setAnswer(bubble, d.html);
            else if (kind === "error") note(d.message, "err");
            else if (kind === "done") done = d;
            log.scrollTop = log.scrollHeight;
          }
          return pump();
        });
      }
      return pump().then(function () {
        if (citations && (citations.cited.length || citations.more.length)) log.appendChild(sources(citations));
        if (done && done.status === "complete") log.appendChild(rateBar(done.message_id, null));
      });
    }).catch(function (e) {
      if (bubble.textContent === "…") bubble.remove();
      note(e.name === "AbortError" ? "Stopped." : e.message, "err");
    }).then(function () {
      controller = null; sendBtn.hidden = false; stopBtn.hidden = true;
      // Keep the answer's start in view: a long answer's sources must not push it away.
      if (bubble.isConnected && bubble.offsetHeight > log.clientHeight * 0.6) log.scrollTop = bubble.offsetTop - log.offsetTop - 8;
      else log.scrollTop = log.scrollHeight;
    });
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); ask(input.value); });
  input.addEventListener("keydown", function (e) { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); ask(input.value); } });
  input.addEventListener("paste", function (e) {
    var items = (e.clipboardData && e.clipboardData.files) || [];
    if (items.length) { addFiles(items); e.preventDefault(); }
  });
  attach.addEventListener("click", function () { $("input[type=file]").click(); });
  $("input[type=file]").addEventListener("change", function (e) { addFiles(e.target.files); e.target.value = ""; });
  stopBtn.addEventListener("click", function () { if (controller) controller.abort(); });
  var launcher = $(".launcher");
  function openPanel(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", open ? "Close help" : "Open help");
    if (open) (form.hidden ? $(".close") : input).focus(); else launcher.focus();
  }
  $(".close").addEventListener("click", function () { openPanel(false); });
  // Escape closes the panel; Tab stays inside it while it is open (a dialog's focus trap).
  root.addEventListener("keydown", function (e) {
    if (panel.hidden) return;
    if (e.key === "Escape") { e.preventDefault(); openPanel(false); return; }
    if (e.key !== "Tab") return;
    var items = Array.prototype.filter.call(panel.querySelectorAll("a[href], button, textarea, summary"),
      function (n) { return !n.hidden && !n.closest("[hidden]") && n.offsetParent !== null; });
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1], active = root.activeElement;
    if (e.shiftKey && active === first) { e.preventDefault(); last.focus(); }
    else if (!e.shiftKey && active === last) { e.preventDefault(); first.focus(); }
  });
  $(".new").addEventListener("click", function () { put("conversation", ""); greet(); });
  launcher.addEventListener("click", function () { openPanel(panel.hidden); });

  function applyConfig() {
    var left = config.position === "bottom-left";
    wrap.style.setProperty("--c", /^#[0-9a-fA-F]{6}$/.test(config.color) ? config.color : "#3056d3");
    $(".title").textContent = config.title;
    wrap.classList.toggle("left", left);
    if (left && !preview) { host.style.right = "auto"; host.style.left = "20px"; }
    attach.hidden = !config.screenshots;
    input.maxLength = config.max_chars;
  }
  // The admin's preview: the greeting, the starters and a made-up answer, as a visitor sees them.
  function showPreview(e) {
    config = e.detail;
    applyConfig();
    greet();
    log.appendChild(el("div", "m user", config.starters[0] || "How do I return an item?"));
    var answer = el("div", "m bot");
    answer.appendChild(el("p", "", "Answers appear here, written from your knowledge base, with the documents they cite."));
    log.appendChild(answer);
    log.appendChild(sources({ cited: [{ numbers: [1], document: "returns-policy.pdf", pages: [2], url: "#", excerpt: "" }], more: [], more_passages: 0 }));
    log.appendChild(rateBar(0, null));
  }

  function mount() {
    if (preview) {
      wrap.classList.add("preview");
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      preview.appendChild(host);
      preview.addEventListener("docent:preview", showPreview);
      root.addEventListener("click", function (e) { if (e.target.closest && e.target.closest("a")) e.preventDefault(); });
      return;
    }
    document.body.appendChild(host);
    ready = startSession().then(function () {
      applyConfig();
      return restore();  // a question typed meanwhile goes after the restored conversation
    }).catch(function () {
      wrap.style.setProperty("--c", "#667085");
      log.textContent = "";
      note("Help is unavailable on this page.", "err");
      form.hidden = true;
      $(".new").hidden = true;
    });
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
