/** superres core: the public API shared by the CLI, the Node-RED nodes and the MCP server. */
export { SuperresError, ERROR_STATUS, isSuperresError, toSuperresError, type ErrorCode } from './errors';
export { DEFAULT_LIMITS, DEFAULT_FETCH_POLICY, type ImageLimits, type FetchPolicy } from './limits';
export { Engine, ModelHandle, type EngineStats } from './engine/engine';
export { EngineConfigSchema, ProviderSchema, engineConfigFromEnv, type EngineConfig, type EngineConfigInput } from './engine/config';
export type { ModelHints, ModelInfo, ProviderName } from './engine/types';
export { upscale, type UpscaleOptions, type UpscaleProgress, type UpscaleResult, type UpscaleStage } from './upscale/upscale';
export { UpscaleParamsSchema, parseUpscaleParams, type UpscaleParams, type UpscaleParamsInput } from './upscale/params';
export { writeFileAtomic } from './fs-atomic';
export * from './image';
export { OPERATIONS, getOperation, upscaleOperation, faceRestoreOperation, type OperationStepProgress, type OperationDefinition, type OperationProgress, type OperationResult, type OperationRunOptions } from './operations';
export { LocalJobQueue, MAX_BATCH, type LocalJobQueueOptions } from './jobs/local-queue';
export * from './jobs/types';
export * from './face';
