// Attachments: each file uploads at once; the send names the uploaded ones.
//
// Files come from the paperclip button (the plain file input, which the no-JS
// form posts), from a drop anywhere on the conversation, or from a paste into
// the composer. Each uploads to /files/upload/ straight away with a chip that
// shows its progress; the send frame then carries the ids, in order.

import { $, chat, clock, csrfToken, fileIcon, formatSize, isoDay } from "./util.js";

const MAX_FILES = 10; // as messenger.services.messages.MAX_FILES

export function setUpAttachments(form, input) {
  const tray = $("[data-uploads]", form);
  const picker = $("[data-attach]", form);
  const button = $("[data-attach-button]", form);
  const status = $("[data-upload-status]", form);
  const sendButton = $(".composer__send", form);
  const zone = $("[data-drop-zone]");
  let uploads = []; // {file, chip, xhr, state: "uploading" | "done" | "failed", stored, preview}
  if (!tray || !picker || !button || !(window.FormData && window.XMLHttpRequest)) {
    return { busy: function () { return false; }, ready: function () { return []; }, clear: function () {}, explain: function () {} };
  }

  // The nicer button stands in for the plain input (which stays in the form).
  $("[data-attach-plain]", form).hidden = true;
  button.hidden = false;
  button.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    add(picker.files);
    picker.value = ""; // taken over: the form must not post them again
  });

  input.addEventListener("paste", function (event) {
    let files = event.clipboardData && event.clipboardData.files;
    if (!files || !files.length) return; // plain text pastes as usual
    event.preventDefault();
    add(Array.prototype.map.call(files, pastedName));
  });

  // Dragging files over the conversation shows where they go.
  let depth = 0;
  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types || [], "Files") >= 0;
  }
  function showZone(on) {
    if (zone) zone.hidden = !on;
    chat.log.closest("[data-chat]").classList.toggle("is-dragging", on);
  }
  const area = $("[data-chat]");
  area.addEventListener("dragenter", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth++;
    showZone(true);
  });
  area.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  area.addEventListener("dragleave", function (event) {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) showZone(false);
  });
  area.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    showZone(false);
    add(event.dataTransfer.files);
    input.focus();
  });
  // A file dropped just beside the conversation must not open in the tab.
  document.addEventListener("dragover", function (event) { if (carriesFiles(event)) event.preventDefault(); });
  document.addEventListener("drop", function (event) { if (carriesFiles(event)) event.preventDefault(); });
  window.addEventListener("blur", function () { depth = 0; showZone(false); });

  function pastedName(file) {
    // Screenshots arrive as "image.png": give them a name worth keeping.
    if (!/^image\.\w+$/.test(file.name || "image.png")) return file;
    let ext = (file.type.split("/")[1] || "png").replace("jpeg", "jpg");
    let stamp = isoDay.format(new Date()) + " " + clock.format(new Date()).replace(":", ".");
    try { return new File([file], "Pasted image " + stamp + "." + ext, { type: file.type }); }
    catch (e) { return file; }
  }

  function add(files) {
    Array.prototype.forEach.call(files || [], function (file) {
      if (uploads.length >= MAX_FILES) {
        announce("A message can carry at most " + MAX_FILES + " files; " + file.name + " was left out.");
        return;
      }
      start(file);
    });
    update();
  }

  function start(file) {
    let chip = $("#upload-template").content.firstElementChild.cloneNode(true);
    let entry = { file: file, chip: chip, xhr: null, state: "uploading", stored: null, preview: null };
    uploads.push(entry);
    $(".upload__name", chip).textContent = file.name;
    $(".upload__name", chip).title = file.name;
    $(".upload__size", chip).textContent = formatSize(file.size);
    let thumb = $(".upload__thumb", chip);
    if (/^image\/(png|jpeg|gif|webp)$/.test(file.type) && window.URL && URL.createObjectURL) {
      entry.preview = URL.createObjectURL(file);
      let img = document.createElement("img");
      img.src = entry.preview;
      img.alt = "";
      thumb.appendChild(img);
    } else {
      thumb.appendChild(fileIcon(file.name));
    }
    $("[data-upload-remove]", chip).addEventListener("click", function () { remove(entry); });
    tray.appendChild(chip);
    tray.hidden = false;

    let data = new FormData();
    data.append("file", file, file.name);
    let xhr = new XMLHttpRequest();
    entry.xhr = xhr;
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) setProgress(entry, event.loaded / event.total);
    });
    xhr.addEventListener("load", function () {
      let answer = xhr.response || {};
      if (xhr.status === 201 && answer.id) {
        entry.stored = answer;
        setState(entry, "done", "");
        announce(file.name + " is ready to send.");
      } else {
        let why = answer.detail || (xhr.status === 413 ? "The file is too large." : "The server refused the file (HTTP " + xhr.status + ").");
        setState(entry, "failed", why);
        announce(file.name + " was not uploaded: " + why);
      }
    });
    xhr.addEventListener("error", function () {
      setState(entry, "failed", "The connection broke off. Remove the file and try again.");
      announce(file.name + " was not uploaded: the connection broke off.");
    });
    setState(entry, "uploading", "");
    xhr.send(data);
  }

  function setProgress(entry, fraction) {
    let percent = Math.min(100, Math.round(fraction * 100));
    $(".upload__progress", entry.chip).value = percent;
    $(".upload__state", entry.chip).textContent = percent === 0 ? "Starting…" : percent < 100 ? percent + "%" : "Checking…";
  }

  function setState(entry, state, detail) {
    let chip = entry.chip;
    entry.state = state;
    entry.xhr = state === "uploading" ? entry.xhr : null;
    chip.className = "upload upload--" + state;
    chip.dataset.state = state;
    $(".upload__progress", chip).hidden = state !== "uploading";
    if (state === "done") $(".upload__state", chip).textContent = "";
    if (state === "uploading") {
      $(".upload__progress", chip).setAttribute("aria-label", "Uploading " + entry.file.name);
      $(".upload__state", chip).textContent = "Starting…";
    }
    let error = $(".upload__error", chip);
    if (state === "failed") {
      if (!error) {
        error = document.createElement("span");
        error.className = "upload__error";
        $(".upload__text", chip).appendChild(error);
      }
      error.textContent = detail;
      $(".upload__state", chip).textContent = "";
    } else if (error) {
      error.remove();
    }
    $("[data-upload-remove-label]", chip).textContent = (state === "uploading" ? "Cancel the upload of " : "Remove ") + entry.file.name;
    $("[data-upload-remove]", chip).title = state === "uploading" ? "Cancel the upload" : "Remove";
    update();
  }

  function remove(entry) {
    if (entry.xhr) entry.xhr.abort(); // nothing is stored for an aborted upload
    // An uploaded file merely stays out of the message (nothing shares it).
    entry.chip.remove();
    if (entry.preview) URL.revokeObjectURL(entry.preview);
    uploads = uploads.filter(function (e) { return e !== entry; });
    announce(entry.state === "uploading" ? "Upload of " + entry.file.name + " cancelled." : entry.file.name + " removed.");
    update();
    input.focus();
  }

  function update() {
    tray.hidden = uploads.length === 0;
    let waiting = uploads.some(function (e) { return e.state === "uploading"; });
    let failed = uploads.some(function (e) { return e.state === "failed"; });
    sendButton.disabled = waiting || failed;
    sendButton.title = waiting ? "Wait until the files are uploaded" : failed ? "Remove the files that could not be uploaded" : "Send";
    form.classList.toggle("composer--files", uploads.length > 0);
  }

  function announce(text) {
    // Re-set so that a repeated message is read out again.
    status.textContent = "";
    setTimeout(function () { status.textContent = text; }, 30);
  }

  return {
    busy: function () { return uploads.some(function (e) { return e.state !== "done"; }); },
    ready: function () { return uploads.map(function (e) { return e.stored; }); },
    clear: function () {
      uploads.forEach(function (e) { e.chip.remove(); if (e.preview) URL.revokeObjectURL(e.preview); });
      uploads = [];
      update();
    },
    explain: function () {
      announce(uploads.some(function (e) { return e.state === "uploading"; })
        ? "Wait until the files are uploaded, then send." : "Remove the files that could not be uploaded, then send.");
    },
  };
}
