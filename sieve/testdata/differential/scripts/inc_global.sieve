require ["include", "fileinto"];
include :global "spam";
fileinto "After";
