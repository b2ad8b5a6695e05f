// Model variants by transformers.js `dtype` name and their files under a folder's onnx/ (onnx-community's layout):
// the one table the forge writes by and the runtime reads by.
export const DTYPE_FILES = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
  int8: 'model_int8.onnx',
  q8: 'model_quantized.onnx',
  q4: 'model_q4.onnx',
} as const;
export type Dtype = keyof typeof DTYPE_FILES;
export const DTYPES = Object.keys(DTYPE_FILES) as Dtype[];

export function isDtype(value: string): value is Dtype {
  return value in DTYPE_FILES;
}
