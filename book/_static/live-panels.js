// Live panels: a widget snapshot on the page becomes the running panel when the reader asks.
//
// Every panel first shows its stored snapshot, marked as such, with a button. The button
// loads Pyodide (Python in WebAssembly) and the course library from this site, runs the
// panel as the notebook did (timewait.webpage.start), and connects its widgets to a widget
// manager of the page (@jupyter-widgets/html-manager, the one that draws the snapshots).
// Python is not started and the library not imported here: Pyodide restores a memory
// snapshot of a Python that did both when the site was built (scripts/site_assets.py,
// make_snapshot), and the package files it did not import are unpacked beside it. A browser
// that cannot restore it starts Python and imports the library, more slowly.
// Nothing is fetched from another host. window.COURSE_PANELS (scripts/course_site.py) says
// which snapshot is which panel; panels.json (scripts/site_assets.py) says what to fetch.
(() => {
  "use strict";
  const config = window.COURSE_PANELS;
  if (!config) return;
  const VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]';
  const MB = n => (n / 1e6).toFixed(1) + " MB";
  let runtime = null;  // one Python for every panel of the page

  function line(cls, text) {
    const p = document.createElement("p");
    p.className = cls;
    p.textContent = text;
    return p;
  }

  function links() {
    const span = document.createElement("span");
    const add = (href, text) => {
      if (!href) return;
      const a = document.createElement("a");
      a.href = href;
      a.textContent = text;
      span.append(span.childNodes.length ? " or " : " Run it in ", a);
    };
    add(config.lite, "JupyterLite");
    add(config.binder, "on Binder");
    if (span.childNodes.length) span.append(".");
    return span;
  }

  async function fetchBytes(url, progress) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    const data = new Uint8Array(await response.arrayBuffer());
    progress(data.length);
    return data;
  }

  // The snapshot, gzip-compressed on the server; a server that sends it with
  // "Content-Encoding: gzip" has had the browser decompress it already.
  async function fetchSnapshot(url, progress) {
    const data = await fetchBytes(url, progress);
    if (data[0] !== 0x1f || data[1] !== 0x8b) return data;
    const stream = new Blob([data]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  const RUNTIME = ["pyodide.asm.wasm", "pyodide.asm.mjs", "python_stdlib.zip", "pyodide.mjs",
                   "pyodide-lock.json"];
  const QUIET = { stdout: () => {}, stderr: () => {} };
  const runtimeBytes = manifest => RUNTIME.reduce((a, f) => a + manifest.bytes[f], 0);

  // Package files, byte-compiled at build time, into Python's site-packages.
  function unpack(py, zip) {
    py.unpackArchive(zip, "zip", { extractDir: py.runPython("import site; site.getsitepackages()[0]") });
  }

  // Python restored from the snapshot, and the package files it did not import.
  async function restorePython(loadPyodide, manifest, progress) {
    const createModule = (await import(config.pyodide + "pyodide.asm.mjs")).default;
    const snapshot = fetchSnapshot(config.panels + manifest.snapshot, progress);
    const [py, rest] = await Promise.all([
      loadPyodide({
        indexURL: config.pyodide, ...QUIET, _loadSnapshot: snapshot,
        // Pyodide 314.0.6 asks for a heap the snapshot's size through INITIAL_MEMORY, which its
        // WebAssembly module does not read (pyodide/pyodide#6254): the heap stays 30 MB and a
        // larger snapshot fails to restore. One allocation of the snapshot's size grows it.
        createPyodideModule: async settings => {
          const module = await createModule(settings);
          const bytes = (await snapshot).length;
          module._free(module._malloc(bytes));
          if (module.HEAP8.length < bytes) throw new Error("no memory for Python's snapshot");
          return module;
        },
      }).then(p => { progress(runtimeBytes(manifest)); return p; }),
      fetchBytes(config.panels + manifest.rest, progress),
    ]);
    // Pyodide keeps its options, and so the snapshot, for as long as the page is open; the
    // restored Python needs it no more: detach its memory (45 MB) for the browser to free.
    const bytes = await snapshot;
    if (bytes.buffer.transfer) bytes.buffer.transfer(0);
    // Every page restores the same memory: draw this reader's own random numbers.
    py.runPython("import random; random.seed()");
    unpack(py, rest);
    return py;
  }

  // Python started as usual, and every package file: for a browser that could not restore
  // the snapshot (the snapshot options are experimental in Pyodide 314).
  async function startPython(loadPyodide, manifest, progress) {
    const [py, bundle] = await Promise.all([
      loadPyodide({ indexURL: config.pyodide, ...QUIET }).then(p => {
        progress(runtimeBytes(manifest));
        return p;
      }),
      fetchBytes(config.panels + manifest.fallback.bundle, progress),
    ]);
    unpack(py, bundle);
    return py;
  }

  async function startRuntime(report) {
    const phases = { start: performance.now() };
    const manifest = await (await fetch(config.panels + "panels.json")).json();
    // The progress line of one way of starting Python: downloads of a way given up on (their
    // fetches may still finish) no longer count.
    let way = null;
    const counting = total => {
      const mine = way = {};
      let done = 0;
      report(`loading Python: 0 of ${MB(total)}`);
      return n => {
        if (way !== mine) return;
        done += n;
        report(`loading Python: ${MB(done)} of ${MB(total)}`);
      };
    };
    const { loadPyodide } = await import(config.pyodide + "pyodide.mjs");
    let bytes = Object.values(manifest.bytes).reduce((a, b) => a + b, 0);
    let py;
    try {
      py = await restorePython(loadPyodide, manifest, counting(bytes));
      phases.fromSnapshot = true;
    } catch (err) {
      console.warn(`Python's snapshot was not restored (${err.message || err}); starting Python`);
      bytes = runtimeBytes(manifest) + manifest.fallback.bytes;
      py = await startPython(loadPyodide, manifest, counting(bytes));
      phases.fromSnapshot = false;
    }
    phases.loaded = performance.now();
    report("starting the course library");
    const manager = new window.CourseHTMLManager();
    const comms = new Map();
    const opening = [];
    const webpage = py.pyimport("timewait.webpage");
    phases.imported = performance.now();
    // A comm of the page: what the widget manager sends goes to Python; what Python sends
    // is queued until the widget's model listens.
    class PageComm {
      constructor(id, target) { this.comm_id = id; this.target_name = target; this.queue = []; }
      open() { return ""; }
      close() { return ""; }
      on_close(cb) { this.closed = cb; }
      on_msg(cb) { this.listener = cb; setTimeout(() => this.flush(), 0); }
      flush() { while (this.listener && this.queue.length) this.listener(this.queue.shift()); }
      deliver(msg) { this.queue.push(msg); if (this.listener) setTimeout(() => this.flush(), 0); }
      send(data, callbacks) {
        webpage.receive(this.comm_id, JSON.stringify(data));
        // The widget manager counts messages in flight until the kernel says it is idle;
        // Python has handled this one by now.
        const status = callbacks && callbacks.iopub && callbacks.iopub.status;
        if (status) setTimeout(() => status({ content: { execution_state: "idle" } }), 0);
        return this.comm_id;
      }
    }
    webpage.install((type, id, text) => {
      const m = JSON.parse(text);
      const msg = { content: { comm_id: id, data: m.data, target_name: m.target_name },
                    metadata: m.metadata, buffers: [] };
      if (type === "comm_open") {
        const c = new PageComm(id, m.target_name);
        comms.set(id, c);
        opening.push(manager.handle_comm_open(c, msg));
      } else if (type === "comm_msg") {
        comms.get(id).deliver(msg);
      } else if (type === "comm_close" && comms.get(id) && comms.get(id).closed) {
        comms.get(id).closed(msg);
      }
    });
    return { py, webpage, manager, opening, bytes, phases };
  }

  async function makeLive(spec, subarea, bar, button) {
    const t0 = performance.now();
    button.disabled = true;
    const status = bar.querySelector(".course-panel-status");
    const report = text => { status.textContent = text; };
    const first = !runtime;
    try {
      runtime = runtime || startRuntime(report);
      const rt = await runtime;
      report("starting the panel");
      const id = rt.webpage.start(spec.call, JSON.stringify(spec.kwargs));
      await Promise.all(rt.opening);
      const view = await rt.manager.create_view(await rt.manager.get_model(id));
      const live = document.createElement("div");
      live.className = "widget-subarea course-panel-live";
      subarea.replaceWith(live);
      await rt.manager.display_view(view, live);
      button.remove();
      report("Live: the controls re-run the model in your browser.");
      bar.dataset.state = "live";
      bar.dataset.seconds = ((performance.now() - t0) / 1000).toFixed(2);
      bar.dataset.bytes = rt.bytes;
      // Where the time went, for the site's browser test: seconds from the click.
      const s = t => ((t - t0) / 1000).toFixed(2);
      bar.dataset.phases = JSON.stringify(first ? {
        from_snapshot: rt.phases.fromSnapshot, python_ready: s(rt.phases.loaded),
        library_ready: s(rt.phases.imported),
        live: s(performance.now()) } : { runtime_already_running: true });
    } catch (err) {
      runtime = null;
      bar.dataset.state = "failed";
      report(`Static snapshot: this browser could not run the panel (${err.message || err}).`);
      status.append(links());
      button.disabled = false;
    }
  }

  function decorate(script) {
    let id;
    try { id = JSON.parse(script.textContent).model_id; } catch (e) { return; }
    const spec = config.views[id];
    const subarea = script.previousElementSibling;
    if (!spec || !subarea || !subarea.classList.contains("widget-subarea")) return;
    const bar = document.createElement("div");
    bar.className = "course-panel-bar";
    bar.dataset.panel = spec.call;
    const status = line("course-panel-status", "");
    bar.append(status);
    // The snapshot's controls cannot respond: say so, and keep them from taking input.
    subarea.inert = true;
    subarea.classList.add("course-panel-snapshot");
    if (spec.static) {
      bar.dataset.state = "static";
      status.textContent = `Static snapshot: the controls do not respond here; ${spec.static}.`;
      status.append(links());
    } else {
      bar.dataset.state = "snapshot";
      status.textContent = "Static snapshot: the controls respond once the panel is live.";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "course-panel-button";
      button.textContent = `Make this panel live (${MB(config.bytes)} download, once)`;
      if (!(typeof WebAssembly === "object" && window.CourseHTMLManager)) {
        bar.dataset.state = "static";
        status.textContent = "Static snapshot: this browser cannot run Python (WebAssembly).";
        status.append(links());
      } else {
        button.addEventListener("click", () => makeLive(spec, subarea, bar, button));
        bar.prepend(button);
      }
    }
    subarea.before(bar);
  }

  // After embed.js has drawn the snapshots (on the window's load event, like this handler,
  // which is registered later and so runs after it; the drawing itself is asynchronous).
  window.addEventListener("load", () => {
    const pending = [...document.querySelectorAll(VIEW)];
    const tryAll = (left) => {
      const rest = pending.filter(s => {
        const sub = s.previousElementSibling;
        if (sub && sub.classList.contains("widget-subarea") && sub.children.length) {
          decorate(s);
          return false;
        }
        return true;
      });
      pending.splice(0, pending.length, ...rest);
      if (pending.length && left > 0) setTimeout(() => tryAll(left - 1), 100);
    };
    tryAll(150);
  });
})();
