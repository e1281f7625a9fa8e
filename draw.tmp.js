const sharp=require('sharp');
const boxes=JSON.parse(process.argv[3]);
(async()=>{const m=await sharp(process.argv[2]).metadata();
const svg=`<svg width="${m.width}" height="${m.height}">${boxes.map(b=>`<rect x="${b[1]}" y="${b[2]}" width="${b[3]}" height="${b[4]}" fill="none" stroke="red" stroke-width="6"/>`).join('')}${(JSON.parse(process.argv[5]||'[]')).map(p=>`<circle cx="${p[0]}" cy="${p[1]}" r="5" fill="lime"/>`).join('')}</svg>`;
await sharp(process.argv[2]).composite([{input:await sharp(Buffer.from(svg)).resize(m.width,m.height,{fit:"fill"}).png().toBuffer()}]).png().toBuffer().then(b=>sharp(b).resize(960).toFile(process.argv[4]));})();
