/** Typed errors of the ONNX layer. Each names the file (or node, or value) at fault. */

export class OnnxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The bytes are not an ONNX model: truncated, not protobuf, or not a ModelProto. */
export class OnnxFormatError extends OnnxError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: not a readable ONNX model: ${reason}`);
  }
}

/** The model's IR version is outside what this library reads. */
export class UnsupportedIrVersionError extends OnnxError {
  constructor(
    readonly file: string,
    readonly irVersion: number,
    readonly supported: readonly [number, number],
  ) {
    super(`${file}: ONNX IR version ${irVersion} is not supported (supported: ${supported[0]} to ${supported[1]})`);
  }
}

/** A tensor stored as external data cannot be read: missing file, bad offset or length. */
export class ExternalDataError extends OnnxError {
  constructor(
    readonly file: string,
    readonly tensor: string,
    reason: string,
  ) {
    super(`${file}: external data of tensor '${tensor}': ${reason}`);
  }
}

/** A model too large for one protobuf message (2 GiB) was saved without external data. */
export class ModelTooLargeError extends OnnxError {
  constructor(
    readonly file: string,
    readonly bytes: number,
  ) {
    super(
      `${file}: the model would be ${(bytes / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit; ` +
        `save it with external data (saveModel option externalDataThreshold, CLI --external-data)`,
    );
  }
}

/** Saving would replace an existing file (or the model's own input) without being asked to. */
export class OutputExistsError extends OnnxError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}; pass overwrite: true (CLI --force) to replace it`);
  }
}

/** An output path that cannot be written as asked: a folder, outside the model's folder, or a file the model reads. */
export class OutputPathError extends OnnxError {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A graph does not have the structure an operation needs; names the node or value. */
export class GraphError extends OnnxError {}
