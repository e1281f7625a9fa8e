/**
 * The slice of Node-RED's runtime API these nodes use, typed locally (the package ships no types
 * and @types/node-red is deliberately not a dependency). Shapes follow @node-red/registry's
 * `createNodeApi` and @node-red/runtime's Node.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A message as it travels between nodes: anything the flow put on it. */
export interface NodeMessage {
  _msgid?: string;
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export type NodeSend = (msg: NodeMessage | Array<NodeMessage | null>) => void;
export type NodeDone = (err?: Error) => void;

/** The properties every node's editor config carries, plus its own (as strings/numbers/booleans). */
export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  z?: string;
}

export interface Node {
  readonly id: string;
  readonly type: string;
  name?: string;
  on(event: 'input', listener: (msg: NodeMessage, send: NodeSend, done: NodeDone) => void): this;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): this;
  status(status: NodeStatus | Record<string, never>): void;
  send(msg: NodeMessage | Array<NodeMessage | null>): void;
  error(err: unknown, msg?: NodeMessage): void;
  warn(message: unknown): void;
  log(message: unknown): void;
  debug(message: unknown): void;
}

/** Express-like request/response as Node-RED's admin app hands them to route handlers. */
export interface AdminRequest extends IncomingMessage {
  query: Record<string, unknown>;
  params: Record<string, string>;
}

export interface AdminResponse extends ServerResponse {
  json(body: unknown): void;
  status(code: number): AdminResponse;
}

export type AdminHandler = (req: AdminRequest, res: AdminResponse, next: (err?: unknown) => void) => void;

export interface NodeAPI {
  nodes: {
    createNode(node: Node, def: NodeDef): void;
    registerType<N extends Node, D extends NodeDef>(type: string, constructor: (this: N, def: D) => void, options?: Record<string, unknown>): void;
    getNode(id: string): Node | null;
  };
  util: {
    evaluateNodeProperty(value: string, type: string, node: Node, msg: NodeMessage, callback: (err: Error | null, result: unknown) => void): void;
    setMessageProperty(msg: NodeMessage, property: string, value: unknown, createMissing?: boolean): boolean;
    cloneMessage<T extends NodeMessage>(msg: T): T;
  };
  comms: {
    publish(topic: string, data: unknown, retain?: boolean): void;
  };
  httpAdmin: {
    get(path: string, ...handlers: AdminHandler[]): void;
  };
  auth: {
    needsPermission(permission: string): AdminHandler;
  };
  log: {
    warn(message: unknown): void;
    debug(message: unknown): void;
  };
}
