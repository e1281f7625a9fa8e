/** The superres package: the core operations plus the model catalog and manager. */
export * from './core';
export { ModelManager, type ModelListing, type ModelProgress, type DownloadReport, type ModelManagerOptions } from './models/manager';
export { loadCatalog, findCatalogEntry, defaultModelName, type CatalogEntry, type DefaultKind } from './models/catalog';
export { defaultHome, type InstalledModel } from './models/store';
export { Superres, acquireSuperres, openRuntimeCount, VERSION, type SuperresOptions, type SystemInfo } from './runtime/runtime';
