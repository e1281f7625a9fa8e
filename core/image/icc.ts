/** Just enough ICC profile parsing to describe a profile and tell which colour space it is for. */

export interface IccInfo {
  /** Data colour space from the header, e.g. "RGB", "GRAY", "CMYK". */
  colourSpace: string;
  /** The profile's 'desc' text, when readable. */
  description?: string;
}

export function parseIcc(icc: Buffer): IccInfo {
  const colourSpace = icc.length >= 20 ? icc.toString('latin1', 16, 20).trim() : '';
  const description = readDescription(icc);
  return description ? { colourSpace, description } : { colourSpace };
}

/** True for profiles that describe sRGB itself, where converting to sRGB would change nothing. */
export function isSrgbProfile(info: IccInfo): boolean {
  return info.colourSpace === 'RGB' && /\bsRGB\b|IEC\s?61966-2[.-]1/i.test(info.description ?? '');
}

/** Reads the 'desc' tag: a v2 textDescriptionType or a v4 multiLocalizedUnicodeType. */
function readDescription(icc: Buffer): string | undefined {
  try {
    const tagCount = icc.readUInt32BE(128);
    for (let i = 0; i < tagCount && 132 + i * 12 + 12 <= icc.length; i++) {
      const entry = 132 + i * 12;
      if (icc.toString('latin1', entry, entry + 4) !== 'desc') continue;
      const offset = icc.readUInt32BE(entry + 4);
      const type = icc.toString('latin1', offset, offset + 4);
      if (type === 'desc') return readTextDescription(icc, offset);
      if (type === 'mluc') return readMluc(icc, offset);
      return undefined;
    }
  } catch {
    // A truncated or odd profile only loses its description.
  }
  return undefined;
}

function readTextDescription(icc: Buffer, offset: number): string | undefined {
  const length = icc.readUInt32BE(offset + 8);
  const text = icc.toString('latin1', offset + 12, Math.min(icc.length, offset + 12 + length));
  return clean(text);
}

/** mluc: 'mluc', reserved, record count, record size, then records of lang, country, length, offset. */
function readMluc(icc: Buffer, offset: number): string | undefined {
  const records = icc.readUInt32BE(offset + 8);
  if (records < 1) return undefined;
  const length = icc.readUInt32BE(offset + 20);
  const start = offset + icc.readUInt32BE(offset + 24);
  let text = '';
  for (let k = start; k + 1 < Math.min(icc.length, start + length); k += 2) text += String.fromCharCode(icc.readUInt16BE(k));
  return clean(text);
}

function clean(text: string): string | undefined {
  const trimmed = text.replace(/\0[\s\S]*$/, '').trim();
  return trimmed.length > 0 ? trimmed : undefined;
}
