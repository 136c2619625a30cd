// An agent loop through the official OpenAI npm SDK: tools offered with the call required, the call read, the tool's
// result sent back, the final answer; once whole and once streamed. Prints what it saw as one JSON line.
// Usage: node agent-loop.mjs BASE_URL MODEL
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused" });

const tools = [{
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["city"],
    },
  },
}];
const question = [{ role: "user", content: "What is the weather in Paris?" }];
const greedy = { model, temperature: 0, max_tokens: 160 };

async function whole() {
  const first = await client.chat.completions.create({ ...greedy, messages: question, tools, tool_choice: "required" });
  const choice = first.choices[0];
  const call = choice.message.tool_calls[0];
  const followUp = [...question, choice.message, { role: "tool", tool_call_id: call.id, content: '{"temperature": 22}' }];
  const final = await client.chat.completions.create({ ...greedy, messages: followUp, tools });
  return { finish: choice.finish_reason, content: choice.message.content, call: call.function, id: call.id,
    final: final.choices[0].message.content, finalFinish: final.choices[0].finish_reason };
}

async function streamed() {
  const calls = [];
  let finish = null, content = "";
  const stream = await client.chat.completions.create({ ...greedy, messages: question, tools, tool_choice: "required", stream: true });
  for await (const chunk of stream) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    content += choice.delta.content ?? "";
    for (const part of choice.delta.tool_calls ?? []) {
      const call = calls[part.index] ??= { id: "", function: { name: "", arguments: "" } };
      call.id += part.id ?? "";
      call.function.name += part.function?.name ?? "";
      call.function.arguments += part.function?.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }
  const call = calls[0];
  const followUp = [...question, { role: "assistant", content: null, tool_calls: [{ ...call, type: "function" }] },
    { role: "tool", tool_call_id: call.id, content: '{"temperature": 22}' }];
  let final = "", finalFinish = null;
  for await (const chunk of await client.chat.completions.create({ ...greedy, messages: followUp, tools, stream: true })) {
    final += chunk.choices[0]?.delta.content ?? "";
    finalFinish = chunk.choices[0]?.finish_reason ?? finalFinish;
  }
  return { finish, content, call: call.function, id: call.id, calls: calls.length, final, finalFinish };
}

console.log(JSON.stringify({ whole: await whole(), streamed: await streamed() }));
