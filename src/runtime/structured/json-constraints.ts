// Builds JSON constraints for one tokenizer: the vocabulary trie is made once, compiled schemas are reused by their
// text (agents send the same schema again and again), and each compiled schema keeps its own mask cache.
import type { TextTokenizer } from '../tokenizer.ts';
import { compileSchema } from './json-schema.ts';
import { JsonConstraint, VocabularyTrie } from './token-masker.ts';

// Distinct schemas kept compiled (with their mask caches).
const MAX_SCHEMAS = 64;

export class JsonConstraints {
  private trie: VocabularyTrie | null = null;
  private readonly bySchema = new Map<string, JsonConstraint>();

  constructor(private readonly tokenizer: TextTokenizer, private readonly eosTokenIds: number[]) {}

  /** `schema` undefined: any JSON object (response_format json_object). Throws SchemaError for unsupported schemas. */
  get(schema: unknown): JsonConstraint {
    const key = schema === undefined ? '' : JSON.stringify(schema);
    let c = this.bySchema.get(key);
    if (!c) {
      this.trie ??= new VocabularyTrie(this.tokenizer.tokenBytes(), this.eosTokenIds);
      c = new JsonConstraint(compileSchema(schema ?? { type: 'object' }), this.trie);
      if (this.bySchema.size >= MAX_SCHEMAS) this.bySchema.delete(this.bySchema.keys().next().value!);
      this.bySchema.set(key, c);
    }
    return c;
  }
}
