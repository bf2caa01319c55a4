if frobnicate { keep; }
