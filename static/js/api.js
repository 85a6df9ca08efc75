// Talking to the server. Every answer is JSON; errors carry {"error": "..."}.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // 0 when the server could not be reached
  }
}

export async function predict(blob, { signal } = {}) {
  return post("/predict", blob, signal);
}

// A whole number: an image (a Blob), or the board's picture and strokes together (an object).
export async function predictNumber(input, { signal } = {}) {
  return post("/predict/number", input, signal);
}

// Inside the model, for one image (a Blob).
export async function explain(image, { signal } = {}) {
  return post("/explain", image, signal);
}

// A correction: the 28x28 image the model saw (a data URL), the right digit, what the model said.
export async function sendCorrection({ image, label, predicted }) {
  return post("/api/corrections", { image, label, predicted });
}

async function post(path, input, signal) {
  const isImage = input instanceof Blob;
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": isImage ? input.type || "application/octet-stream" : "application/json" },
      body: isImage ? input : JSON.stringify(input),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("Can't reach the server", 0);
  }
  return readJson(response);
}

export async function modelInfo() {
  return readJson(await fetch("/api/model"));
}

async function readJson(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: a proxy's error page, say
  }
  if (!response.ok) {
    throw new ApiError(body?.error || `The server answered ${response.status}`, response.status);
  }
  return body;
}
