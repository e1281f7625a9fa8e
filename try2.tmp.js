const { Superres } = require('./dist/runtime/runtime.js');
const fs = require('fs');
(async () => {
  const sr = new Superres({ home: '/tmp/srhome', processJobs: false });
  try {
    for (const f of [1, 3, 5, 6]) {
      const t0 = Date.now();
      const r = await sr.restoreFaces(`/tmp/pk/fa/package/demo/sample${f}.jpg`, { upscale: 1, format: 'png' }, { onProgress: (p) => { if (p.stage === 'detect') console.log(p.message); } });
      console.log(f, Date.now() - t0, 'ms', r.detector, r.faces.length, r.timings.detect_ms, r.warnings);
      fs.writeFileSync(`/tmp/faces${f}.json`, JSON.stringify(r.faces));
    }
  } catch (e) { console.error(e); }
  await sr.close();
})();
