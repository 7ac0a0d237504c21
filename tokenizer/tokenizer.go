// Package tokenizer turns text into token ids and back.
package tokenizer

// Tokenizer is what the engine and the commands need from any vocabulary.
type Tokenizer interface {
	// Encode tokenizes text. Added and special tokens that appear literally in
	// text are matched as Hugging Face tokenizers does. With addSpecial, the
	// tokens the model's post-processor adds (BOS for most Llama models) are
	// added; without, none are.
	Encode(text string, addSpecial bool) []int
	// Decode turns ids back into text (special tokens are rendered as their text).
	Decode(ids []int) string
	// Piece is the raw vocabulary entry of one id ("" when out of range).
	Piece(id int) string
	// VocabSize is the number of ids.
	VocabSize() int
	// BOS and EOS are the begin/end-of-sequence ids, -1 when absent.
	BOS() int
	EOS() int
}

var (
	_ Tokenizer = (*BPE)(nil)
	_ Tokenizer = (*Llama2c)(nil)
	_ Tokenizer = (*SPM)(nil)
)
