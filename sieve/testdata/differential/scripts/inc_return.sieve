require ["include", "fileinto"];
include "returns";
fileinto "AfterReturn";
