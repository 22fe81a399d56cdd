// Brokkr console: live updates for the page's live region.
//
// One server-sent event stream (/ui/live) per tab fires after the api's
// change notifications; on each event the page's live region (#live) is
// refetched with the X-Console-Partial header and swapped in. No timers
// poll the server. Without JavaScript every page still works: it is plain
// server-rendered HTML with links and forms.
(function () {
  "use strict";

  var region = document.getElementById("live");
  if (!region || !window.EventSource || !window.fetch) {
    return;
  }
  var status = document.getElementById("livestatus");
  var busy = false;
  var again = false;

  function checkedRadios() {
    var out = {};
    region.querySelectorAll("input[type=radio]:checked").forEach(function (el) {
      out[el.name] = el.value;
    });
    return out;
  }

  function openDetails() {
    var out = [];
    region.querySelectorAll("details[open][id]").forEach(function (el) {
      out.push(el.id);
    });
    return out;
  }

  function restoreDetails(ids) {
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (el && el.tagName === "DETAILS") {
        el.open = true;
      }
    });
  }

  function restoreRadios(saved) {
    Object.keys(saved).forEach(function (name) {
      region.querySelectorAll("input[type=radio]").forEach(function (el) {
        if (el.name === name && el.value === saved[name]) {
          el.checked = true;
        }
      });
    });
  }

  function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Console-Partial": "1" },
      cache: "no-store"
    }).then(function (resp) {
      if (resp.status === 401) {
        window.location.assign("/ui/login");
        return null;
      }
      return resp.ok ? resp.text() : null;
    }).then(function (html) {
      if (html === null || html === undefined) {
        return;
      }
      // Keep keyboard focus, selections and opened results across the swap.
      var focused = document.activeElement && region.contains(document.activeElement) ? document.activeElement.id : "";
      var saved = checkedRadios();
      var opened = openDetails();
      region.innerHTML = html;
      restoreRadios(saved);
      restoreDetails(opened);
      if (focused) {
        var el = document.getElementById(focused);
        if (el) {
          el.focus();
        }
      }
      if (status) {
        status.textContent = "Updated " + new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
      }
    }).catch(function () {
      // The stream reconnects by itself; the next event refreshes again.
    }).then(function () {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    });
  }

  var stream = new EventSource("/ui/live");
  stream.addEventListener("change", refresh);
  // The session's PAK was rotated or revoked: the session is gone.
  stream.addEventListener("signedout", function () {
    stream.close();
    window.location.assign("/ui/login");
  });
  // A reconnect the server refused (401 after the session ended): one
  // refresh finds out and goes to the sign-in form.
  stream.addEventListener("error", function () {
    if (stream.readyState === EventSource.CLOSED) {
      refresh();
    }
  });
  window.addEventListener("pagehide", function () {
    stream.close();
  });
})();
