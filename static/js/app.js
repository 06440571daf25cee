/*
 * Progressive enhancement for every page. Each feature works without this file:
 * dialogs are pages or open sections, Delete opens a confirmation page, Run posts the form.
 * No inline scripts or handlers anywhere: the Content-Security-Policy allows only this file.
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  var FOCUSABLE = [
    "a[href]", "button:not([disabled])", "input:not([disabled]):not([type='hidden'])",
    "select:not([disabled])", "textarea:not([disabled])", "[tabindex]:not([tabindex='-1'])"
  ].join(",");

  function focusableIn(container) {
    return Array.prototype.filter.call(container.querySelectorAll(FOCUSABLE), function (el) {
      return !el.hidden && el.getClientRects().length > 0;
    });
  }

  function camelCase(name) {
    return name.replace(/-([a-z])/g, function (_, letter) { return letter.toUpperCase(); });
  }

  /* Dialogs ---------------------------------------------------------------------------------- */

  var openers = new WeakMap();

  function openDialog(dialog, opener) {
    if (dialog.open) dialog.close(); // rendered open for no-JS use: reopen as a modal
    openers.set(dialog, opener || document.activeElement);
    dialog.showModal();
    // The first field, not the header's close button: typing is what the dialog is for.
    var target = dialog.querySelector("[autofocus]") ||
      focusableIn(dialog).filter(function (el) { return el.matches("input, textarea, select"); })[0] ||
      focusableIn(dialog)[0];
    if (target) target.focus();
  }

  function fillFromOpener(dialog, opener) {
    dialog.querySelectorAll("[data-fill]").forEach(function (el) {
      var value = opener.dataset["fill" + camelCase("-" + el.dataset.fill)];
      el.textContent = value || ""; // textContent: never parsed as HTML
    });
    dialog.querySelectorAll("form[data-action-from-opener]").forEach(function (form) {
      form.action = opener.getAttribute("href");
    });
  }

  function trapFocus(event) {
    if (event.key !== "Tab") return;
    var dialog = event.currentTarget;
    var items = focusableIn(dialog);
    if (!items.length) { event.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1];
    var inside = dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside)) {
      event.preventDefault(); last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault(); first.focus();
    }
  }

  function wipeSecrets(dialog) {
    dialog.querySelectorAll("input").forEach(function (input) { input.value = ""; });
    dialog.remove();
  }

  function onDialogClose(event) {
    var dialog = event.currentTarget;
    // The close event fires later: a dialog rendered open and reopened as a modal is open again.
    if (dialog.open) return;
    if (dialog.dataset.closeUrl && window.location.pathname !== dialog.dataset.closeUrl) {
      window.history.replaceState(null, "", dialog.dataset.closeUrl);
    }
    if (dialog.hasAttribute("data-wipe-on-close")) wipeSecrets(dialog);
    var opener = openers.get(dialog);
    if (opener && document.contains(opener) && opener !== document.body) {
      opener.focus();
    } else {
      var main = document.getElementById("main");
      if (main) main.focus();
    }
  }

  function setUpDialogs() {
    document.querySelectorAll("dialog").forEach(function (dialog) {
      dialog.addEventListener("keydown", trapFocus);
      dialog.addEventListener("close", onDialogClose);
    });
    document.addEventListener("click", function (event) {
      var opener = event.target.closest("[data-opens-dialog]");
      if (opener) {
        var dialog = document.getElementById(opener.dataset.opensDialog);
        if (!dialog) return; // fall back to the link's own page
        event.preventDefault();
        fillFromOpener(dialog, opener);
        openDialog(dialog, opener);
        return;
      }
      var closer = event.target.closest("[data-closes-dialog]");
      if (closer && closer.closest("dialog")) {
        event.preventDefault();
        closer.closest("dialog").close();
      }
    });
    document.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
      openDialog(dialog, null);
    });
    // A page restored from the back/forward cache must not bring a shown-once secret back.
    window.addEventListener("pagehide", function () {
      document.querySelectorAll("dialog[data-wipe-on-close]").forEach(wipeSecrets);
    });
  }

  /* Copy buttons ---------------------------------------------------------------------------------- */

  function copyText(text, source) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    return new Promise(function (resolve, reject) {
      // Plain HTTP on a non-local host has no clipboard API. Copy from a scratch textarea holding
      // exactly the text (select() does nothing on a <code>, and copying an empty selection still
      // "succeeds"), inside the open modal so it can take focus, and believe execCommand alone.
      var scratch = document.createElement("textarea");
      var previous = document.activeElement;
      var copied = false;
      scratch.value = text;
      scratch.readOnly = true;
      scratch.className = "copy-scratch";
      scratch.setAttribute("aria-hidden", "true");
      (source.closest("dialog") || document.body).appendChild(scratch);
      scratch.select();
      try { copied = document.execCommand("copy") && scratch.selectionEnd - scratch.selectionStart === text.length; }
      catch (error) { copied = false; }
      scratch.remove();
      if (previous && previous.focus) previous.focus();
      if (copied) resolve(); else reject(new Error("copy refused"));
    });
  }

  /* Select the whole text of an input or a block, for Ctrl+C when copying is blocked. */
  function selectForCopying(source) {
    if (source.select) { source.focus(); source.select(); return; }
    var selection = window.getSelection();
    if (selection) selection.selectAllChildren(source);
  }

  function setUpCopyButtons() {
    document.querySelectorAll("[data-copy-from]").forEach(function (button) {
      button.hidden = false;
      var timer = null;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copyFrom);
        if (!source) return;
        var text = "value" in source && source.tagName !== "PRE" ? source.value : source.textContent;
        var status = (button.closest("dialog, .snippet, .copy-scope") || document).querySelector(".copy-status");
        copyText(text, source).then(function () {
          button.classList.add("is-copied");
          if (status) { status.classList.remove("is-error"); status.textContent = "Copied to the clipboard."; }
          button.dispatchEvent(new CustomEvent("lf:copied", { bubbles: true }));
          clearTimeout(timer);
          timer = setTimeout(function () {
            button.classList.remove("is-copied");
            if (status) status.textContent = "";
          }, 2000);
        }, function () {
          button.classList.remove("is-copied");
          if (status) {
            status.classList.add("is-error");
            status.textContent = "This browser did not let the page copy it. The text is selected: press Ctrl+C (⌘C on a Mac) to copy it.";
          }
          selectForCopying(source);
        });
      });
    });
    document.querySelectorAll("[data-select-on-focus]").forEach(function (input) {
      input.addEventListener("focus", function () { input.select(); });
      input.addEventListener("click", function () { input.select(); });
    });
  }

  /* User menu (a <details>): close on outside click and Escape ---------------------------------- */

  function setUpMenus() {
    var menus = document.querySelectorAll("details[data-menu]");
    document.addEventListener("click", function (event) {
      menus.forEach(function (menu) {
        if (menu.open && !menu.contains(event.target)) menu.open = false;
      });
    });
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      menus.forEach(function (menu) {
        if (menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
      });
    });
  }

  /* Tabs: a [data-tabs] block of .snippet panels, each titled by its <h3> ---------------------- */

  function setUpTabs() {
    document.querySelectorAll("[data-tabs]").forEach(function (container, groupIndex) {
      var panels = Array.prototype.slice.call(container.querySelectorAll(":scope > .snippet"));
      if (panels.length < 2) return;
      var list = document.createElement("div");
      list.className = "tabs";
      list.setAttribute("role", "tablist");
      list.setAttribute("aria-label", container.dataset.tabs);
      var tabs = panels.map(function (panel, index) {
        var tab = document.createElement("button");
        var id = "tab-" + groupIndex + "-" + index;
        tab.type = "button";
        tab.className = "tab";
        tab.id = id;
        tab.setAttribute("role", "tab");
        tab.setAttribute("aria-controls", panel.id);
        tab.textContent = panel.querySelector("h3").textContent;
        panel.setAttribute("role", "tabpanel");
        panel.setAttribute("aria-labelledby", id);
        list.appendChild(tab);
        return tab;
      });
      function select(index, focus) {
        tabs.forEach(function (tab, i) {
          var on = i === index;
          tab.setAttribute("aria-selected", on ? "true" : "false");
          tab.tabIndex = on ? 0 : -1;
          panels[i].hidden = !on;
        });
        if (focus) tabs[index].focus();
      }
      list.addEventListener("click", function (event) {
        var tab = event.target.closest("[role='tab']");
        if (tab) select(tabs.indexOf(tab), false);
      });
      list.addEventListener("keydown", function (event) {
        var current = tabs.indexOf(document.activeElement);
        if (current < 0) return;
        if (event.key === "ArrowRight") { event.preventDefault(); select((current + 1) % tabs.length, true); }
        if (event.key === "ArrowLeft") { event.preventDefault(); select((current - 1 + tabs.length) % tabs.length, true); }
      });
      container.classList.add("tabbed");
      container.insertBefore(list, container.firstChild);
      select(0, false);
    });
  }

  /* ==== Issue 16: Run box, tweaks editor, drop zones (flows pages) ==== */

  /* Run box: Enter runs, Shift+Enter is a new line; the answer streams in as the model writes
   * (the run endpoint answers JSON lines to "Accept: application/x-ndjson"); focus stays in the
   * form; the answer is announced once, when complete. An expired session or form says so. */

  var STREAM_TYPE = "application/x-ndjson";

  function tweaksProblem(text) {
    if (!text.trim()) return "";
    var value;
    try { value = JSON.parse(text); } catch (error) { return "Tweaks must be JSON: " + error.message + "."; }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return "Tweaks must be a JSON object, e.g. {\"ChatInput-b6UCc\": {\"sender_name\": \"Ada\"}}.";
    }
    return "";
  }

  function setUpJsonFields() {
    document.querySelectorAll("textarea[data-json-object]").forEach(function (field) {
      var live = document.getElementById(field.id + "_live");
      var timer = null;
      function check() {
        var problem = tweaksProblem(field.value);
        if (problem) field.setAttribute("aria-invalid", "true"); else field.removeAttribute("aria-invalid");
        if (live) live.textContent = problem;
        field.closest(".field").classList.toggle("has-error", !!problem);
        return problem;
      }
      field.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 400); });
      field.addEventListener("blur", check);
      field.checkJson = check;
    });
  }

  function runBox(form) {
    var output = document.getElementById(form.dataset.runForm);
    var pre = output.querySelector("pre");
    var label = output.querySelector(".run-output-label");
    var session = output.querySelector(".run-session");
    var actions = output.querySelector(".run-actions");
    var status = document.getElementById("run-status");
    var button = form.querySelector("button[type='submit']");
    var message = form.querySelector("textarea[name='input_value']");
    var tweaks = form.querySelector("textarea[name='tweaks']");
    var running = false;

    function show(kind, text) {
      output.hidden = false;
      output.classList.toggle("is-error", kind === "error");
      label.textContent = kind === "error" ? "Error" : "Output";
      pre.textContent = text;
    }

    function action(text, href, onClick) {
      actions.textContent = "";
      var link = document.createElement(href ? "a" : "button");
      link.className = "btn btn-secondary btn-sm";
      link.textContent = text;
      if (href) link.href = href; else { link.type = "button"; link.addEventListener("click", onClick); }
      actions.appendChild(link);
      actions.hidden = false;
    }

    function announce(text) {
      status.textContent = "";
      setTimeout(function () { status.textContent = text; }, 50); // a change, even for the same text
    }

    function fail(text) {
      show("error", text);
      announce("The run failed: " + text);
    }

    function finish(text, sessionId) {
      show("output", text);
      if (sessionId) {
        session.hidden = false;
        session.querySelector("code").textContent = sessionId;
      }
      announce("The flow answered: " + (text.length > 300 ? text.slice(0, 300) + "…" : text));
    }

    function refused(statusCode, body) {
      body = body || {};
      if (statusCode === 401 || body.code === "session_expired") {
        fail("Your session expired. Sign in again to come back to this flow; your message is kept here until you leave.");
        action("Sign in again", body.login_url || "/login/?next=" + encodeURIComponent(window.location.pathname));
      } else if (body.code === "csrf_failed") {
        fail("This page’s form expired (you signed in or out in another tab, or it was open too long). Reload the page and run again.");
        action("Reload the page", null, function () { window.location.reload(); });
      } else if (body.errors && body.errors.tweaks && tweaks) {
        fail(body.errors.tweaks.join(" "));
        tweaks.closest("details").open = true;
      } else {
        fail(body.detail || "The server answered " + statusCode + ". Try again.");
      }
    }

    function readStream(response) {
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      var buffer = "", streamed = "", ended = false;
      output.classList.add("is-streaming");
      function handle(line) {
        if (!line.trim()) return;
        var event = JSON.parse(line);
        if (event.event === "token") {
          streamed += event.chunk;
          show("output", streamed);
        } else if (event.event === "end") {
          ended = true;
          finish(event.output, event.session_id);
        } else if (event.event === "error") {
          ended = true;
          fail(event.detail);
        }
      }
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            handle(buffer + decoder.decode());
            if (!ended) fail("The run stopped before it finished. Try again.");
            return;
          }
          buffer += decoder.decode(chunk.value, { stream: true });
          var lines = buffer.split("\n");
          buffer = lines.pop();
          lines.forEach(handle);
          return pump();
        });
      }
      return pump().finally(function () { output.classList.remove("is-streaming"); });
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (running) return;
      if (tweaks && tweaks.checkJson && tweaks.checkJson()) {
        tweaks.closest("details").open = true;
        tweaks.focus();
        return;
      }
      running = true;
      actions.hidden = true;
      session.hidden = true;
      button.setAttribute("aria-busy", "true");
      button.setAttribute("aria-disabled", "true");
      form.classList.add("is-running");
      show("output", "Running…");
      announce("Running the flow…");
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "Accept": STREAM_TYPE },
        credentials: "same-origin"
      }).then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.ok && type.indexOf(STREAM_TYPE) === 0 && response.body) return readStream(response);
        if (type.indexOf("application/json") === 0) {
          return response.json().then(function (body) {
            if (response.ok) finish(body.output, body.session_id); else refused(response.status, body);
          });
        }
        refused(response.status, null);
      }).catch(function () {
        fail("The server could not be reached. Check your connection and try again.");
      }).finally(function () {
        running = false;
        form.classList.remove("is-running");
        button.removeAttribute("aria-busy");
        button.removeAttribute("aria-disabled");
      });
    });

    if (message) {
      message.addEventListener("keydown", function (event) {
        if (event.key !== "Enter" || event.shiftKey || event.altKey || event.ctrlKey || event.metaKey || event.isComposing) return;
        event.preventDefault();
        if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
      });
    }
  }

  function setUpRunForms() {
    document.querySelectorAll("form[data-run-form]").forEach(runBox);
  }

  /* Drop zones: .json files dropped on a file field fill it (several when it takes several);
   * dropped anywhere on the flow list, they open the import dialog with them. */

  function jsonFiles(list, many) {
    var transfer = new DataTransfer();
    Array.prototype.forEach.call(list, function (file) {
      if (many || !transfer.files.length) transfer.items.add(file);
    });
    return transfer.files;
  }

  function chosenStatus(zone) {
    var status = zone.querySelector(".drop-status");
    if (!status) {
      status = document.createElement("p");
      status.className = "drop-status small muted";
      status.setAttribute("aria-live", "polite");
      zone.appendChild(status);
    }
    return status;
  }

  function fillInput(zone, files) {
    var input = zone.querySelector("input[type='file']");
    if (!input || !files || !files.length) return;
    input.files = jsonFiles(files, input.multiple);
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setUpDropZones() {
    document.querySelectorAll("[data-drop-zone]").forEach(function (zone) {
      var input = zone.querySelector("input[type='file']");
      if (!input) return;
      input.addEventListener("change", function () {
        var names = Array.prototype.map.call(input.files, function (file) { return file.name; });
        chosenStatus(zone).textContent = names.length ? "Chosen: " + names.join(", ") : "";
      });
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (event) {
          event.preventDefault();
          event.stopPropagation();
          zone.classList.add("is-dragging");
        });
      });
      zone.addEventListener("dragleave", function () { zone.classList.remove("is-dragging"); });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        event.stopPropagation();
        zone.classList.remove("is-dragging");
        fillInput(zone, event.dataTransfer.files);
      });
    });
    var dialog = document.getElementById("import-flow-dialog");
    if (!dialog) return;
    document.addEventListener("dragover", function (event) {
      if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) event.preventDefault();
    });
    document.addEventListener("drop", function (event) {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      if (!dialog.open || !dialog.matches(":modal")) openDialog(dialog, null);
      fillInput(dialog.querySelector("[data-drop-zone]"), event.dataTransfer.files);
    });
  }
  /* ==== end of issue 16 section ==== */

  /* API keys: the shown-once key, confirmations before rotating or revoking several keys, a key
     made in place from a flow's API panel. Each works without this file (see the templates). --- */

  // Until Copy was used, Escape does not close the dialog showing a new key (and leaving the page
  // asks first): one stray Escape would lose the key for good. Done is the deliberate way out.
  function setUpShownOnceGuards() {
    document.querySelectorAll("dialog[data-guard-until-copied]").forEach(function (dialog) {
      var copied = false;
      var leaving = false;
      var warning = dialog.querySelector(".leave-warning");
      function warn(event) {
        if (copied) return;
        event.preventDefault();
        if (warning) warning.hidden = false;
      }
      dialog.addEventListener("lf:copied", function () {
        copied = true;
        if (warning) warning.hidden = true;
      });
      dialog.addEventListener("keydown", function (event) { if (event.key === "Escape") warn(event); });
      dialog.addEventListener("cancel", warn);
      dialog.querySelectorAll("[data-closes-dialog]").forEach(function (closer) {
        closer.addEventListener("click", function () { leaving = true; });
      });
      window.addEventListener("beforeunload", function (event) {
        if (copied || leaving || !dialog.open || !document.contains(dialog)) return;
        event.preventDefault();
        event.returnValue = "";
      });
    });
  }

  var confirmFillers = {
    "rotate-key-dialog": function (form, dialog) {
      var select = form.querySelector("select[name='grace_period_hours']");
      var when = select ? select.options[select.selectedIndex].text.toLowerCase() : "at once";
      dialog.querySelector("[data-fill='when']").textContent = when;
      return true;
    },
    "bulk-revoke-dialog": function (form, dialog) {
      var ticked = Array.prototype.filter.call(form.elements, function (el) {
        return el.name === "ids" && el.checked;
      });
      if (!ticked.length) {
        var empty = document.getElementById("bulk-revoke-empty-dialog");
        if (empty) openDialog(empty, form.querySelector("button[type='submit']"));
        return false;
      }
      dialog.querySelector("[data-fill='count']").textContent =
        ticked.length === 1 ? "1 key" : ticked.length + " keys";
      var list = dialog.querySelector("[data-fill='labels']");
      list.textContent = "";
      ticked.forEach(function (box) {
        var item = document.createElement("li");
        item.textContent = box.dataset.label || box.value; // textContent: never parsed as HTML
        list.appendChild(item);
      });
      return true;
    }
  };

  // A form with data-confirm-with="<dialog id>" posts only after that dialog's confirm button;
  // without this script its server answers a confirmation page instead.
  function setUpConfirmedForms() {
    document.querySelectorAll("form[data-confirm-with]").forEach(function (form) {
      var dialog = document.getElementById(form.dataset.confirmWith);
      var confirmed = form.querySelector("input[name='confirmed']");
      if (!dialog || !confirmed) return;
      form.addEventListener("submit", function (event) {
        if (confirmed.value) return;
        event.preventDefault();
        var fill = confirmFillers[dialog.id];
        if (fill && !fill(form, dialog)) return;
        openDialog(dialog, event.submitter || form.querySelector("button[type='submit']"));
      });
      dialog.querySelector("[data-confirm-submit]").addEventListener("click", function () {
        confirmed.value = "on";
        dialog.close();
        form.submit(); // no submit event: straight to the server
      });
    });
  }

  // "Create a key for this flow": the key comes back in the answer and is shown once, in place.
  function setUpInlineKeys() {
    document.querySelectorAll("form[data-inline-key]").forEach(function (form) {
      var box = form.closest("[data-flow-key]");
      var result = box.querySelector(".flow-key-result");
      var error = box.querySelector(".flow-key-error");
      var input = result.querySelector("input");
      var button = form.querySelector("button[type='submit']");
      function wipe() {
        input.value = "";
        result.querySelector(".copy-status").textContent = "";
        result.hidden = true;
      }
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        button.disabled = true;
        error.hidden = true;
        fetch(form.action, {
          method: "POST", body: new FormData(form), credentials: "same-origin", cache: "no-store",
          headers: { "Accept": "application/json" }
        }).then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        }).then(function (body) {
          input.value = body.api_key;
          result.querySelector("[data-fill='name']").textContent = "“" + body.name + "”";
          result.querySelector("a[data-fill='url']").setAttribute("href", body.url);
          form.hidden = true;
          result.hidden = false;
          input.focus();
        }).catch(function () {
          error.textContent = "The key could not be created. Reload the page and try again.";
          error.hidden = false;
        }).finally(function () {
          button.disabled = false;
        });
      });
      result.querySelector("[data-flow-key-done]").addEventListener("click", function () {
        wipe();
        form.hidden = false;
        button.focus();
      });
      window.addEventListener("pagehide", wipe);
    });
  }

  /* ------------------------------------------------------------------------------------------ */

  function start() {
    setUpDialogs();
    setUpCopyButtons();
    setUpShownOnceGuards();
    setUpConfirmedForms();
    setUpInlineKeys();
    setUpMenus();
    setUpTabs();
    setUpJsonFields();
    setUpRunForms();
    setUpDropZones();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
