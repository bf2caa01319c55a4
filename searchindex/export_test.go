package searchindex

// DocWords returns d's distinct words (scope byte first) and the scopes with a word
// longer than MaxWord, for the external tests (TestExtractGolden).
func DocWords(d *Doc) ([]string, uint16) { return d.words, d.long }
