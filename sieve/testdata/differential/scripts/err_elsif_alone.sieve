elsif true { keep; }
